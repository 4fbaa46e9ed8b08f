"""How core/config/schema.py declares a YAML key and parses its value.

Each parser turns one YAML value into its typed form or raises ``Invalid`` with a
message that names what is wrong (never what a secret contained); ``build`` walks a
dataclass's declared settings over a YAML mapping and files every problem, with its
line, in the ``Context``, so that one pass reports all of them. ``config.py`` keeps the
schema itself and the checks that know about channels; this module knows YAML values only.
"""

from __future__ import annotations

import copy
import difflib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from marketsync.core.types import ChannelInfo
from marketsync.core.config.yamlsource import YamlMapping, join_path


class FrozenDict(dict):
    """A dict nobody can change, for mappings inside the frozen config.

    Not ``MappingProxyType``: that cannot be copied, pickled or ``dataclasses.asdict``-ed,
    and status output and tests do all three.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("the configuration is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> "FrozenDict":
        return self

    def __deepcopy__(self, memo: dict) -> "FrozenDict":
        return FrozenDict({copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()})


# --- secrets ------------------------------------------------------------------------------


class Secret:
    """A resolved secret that prints as ``***``.

    Deliberately not a ``str`` subclass: a str subclass leaks through concatenation,
    ``json.dumps`` and every C-level string function. Ask for ``.value`` where the text
    is really needed (an HTTP header), nowhere else.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return format("***", spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HOW_TO_REFER = '"${ENV_VAR}", "${file:PATH}" or "${credential:NAME}"'


def mask_url(url: str) -> str:
    """A database URL fit for logs and ``status``: the password becomes ``***``."""
    masked = re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"((?:^|[?&])password=)[^&]*", r"\1***", masked, flags=re.I)


# --- validation machinery -------------------------------------------------------------------


class Invalid(Exception):
    """A value is wrong; the message says why, never what a secret contained."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


FAILED: Any = type("_Failed", (), {"__repr__": lambda self: "<failed>"})()


@dataclass(slots=True)
class Context:
    filename: str
    base_dir: Path
    channels: Mapping[str, ChannelInfo]
    environ: Mapping[str, str]
    #: channel -> why its plugin is not loaded; accounts on it are kept, unchecked
    unavailable: Mapping[str, str]
    errors: list[tuple[int, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  #: key path -> line of its value
    key_lines: dict[str, int] = field(default_factory=dict)  #: key path -> line of the key
    #: every account name given -> its channel, or None when that is missing or unknown
    account_channels: dict[str, str | None] = field(default_factory=dict)
    #: checks that span a class's keys, run by ``build`` after the keys themselves
    checks: Mapping[type, "Check"] = field(default_factory=dict)

    def error(self, line: int, path: str, message: str) -> None:
        where = f"{self.filename}:{line}: " + (f"{path}: " if path else "")
        self.errors.append((line, where + message))

    def resolve(self, value: str) -> str:
        """Expand every ``${...}`` reference in ``value``."""
        return REFERENCE.sub(lambda m: self._reference(m.group(1)), value)

    def _reference(self, ref: str) -> str:
        kind, _, name = ref.partition(":")
        if not name and _ENV_NAME.fullmatch(kind):
            if kind not in self.environ:
                raise Invalid(f"environment variable {kind} is not set")
            return _non_empty(self.environ[kind], f"environment variable {kind}")
        if kind == "file" and name:
            path = self.base_dir / Path(name).expanduser()
            return _non_empty(_read_secret(path, f"secret file {path}"), f"secret file {path}")
        if kind == "credential" and name:
            if "/" in name or name in (".", ".."):
                raise Invalid(f"credential name {name!r} must not contain '/'")
            directory = self.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise Invalid(
                    f"${{credential:{name}}} needs $CREDENTIALS_DIRECTORY, which systemd "
                    "sets for LoadCredential=; it is not set (outside systemd use ${file:PATH})"
                )
            path = Path(directory) / name
            content = _read_secret(path, f"credential {name} ({path})")
            return _non_empty(content, f"credential {name}")
        raise Invalid(f"'${{{ref}}}' is not a valid reference (expected {HOW_TO_REFER})")


#: the most a ``${file:…}`` or ``${credential:…}`` reference reads: keys, tokens and
#: certificates are a few kilobytes; ``${file:/dev/zero}`` must not fill the memory
MAX_SECRET_BYTES = 64 * 1024


def _read_secret(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise Invalid(f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise Invalid(f"{what} is larger than {MAX_SECRET_BYTES // 1024} KiB, the most a "
                      "reference reads; is it the right file?")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{what} is not UTF-8 text") from None
    # Editors end files with a newline that is not part of the secret.
    return content[:-2] if content.endswith("\r\n") else content.removesuffix("\n")


def _non_empty(value: str, what: str) -> str:
    if not value:
        raise Invalid(f"{what} is empty")
    return value


def describe_value(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value}"


def not_text(value: object) -> str:
    if value is None:
        return "is empty"
    quote = "" if isinstance(value, (list, dict)) else " (put it in quotes)"
    return f"expected text, got {describe_value(value)}{quote}"


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(choices)


# A parser turns one YAML value into its typed form or raises Invalid. ``label`` is the
# type as ``describe()`` shows it. Collections report their members' errors themselves
# and return FAILED.
Parser = Callable[[Any, Context, str, int], Any]
#: (parsed values, internal fields, ctx, path, line) -> whether they agree; may fill both
Check = Callable[[dict, dict, Context, str, int], bool]


def parser(label: str, cls: type | None = None) -> Callable[[Parser], Parser]:
    """Attach what ``describe()`` shows: the type's label, and the nested class if any."""

    def mark(parse: Parser) -> Parser:
        parse.label, parse.cls = label, cls  # type: ignore[attr-defined]
        return parse

    return mark


def text(pattern: str | None = None, hint: str = "", label: str = "text") -> Parser:
    compiled = re.compile(pattern) if pattern else None

    def parse(value: Any, ctx: Context, path: str, line: int) -> str:
        if not isinstance(value, str):
            raise Invalid(not_text(value))
        if "${" in value:
            raise Invalid("${...} references are only expanded in secrets "
                          "(credentials, http.token, pii.key) and database")
        if compiled and not compiled.fullmatch(value):
            raise Invalid(f"{value!r} is not valid ({hint})")
        return value

    return parser(label)(parse)


def integer(low: int, high: int) -> Parser:
    def parse(value: Any, ctx: Context, path: str, line: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {describe_value(value)}")
        if not low <= value <= high:
            raise Invalid(f"must be between {low} and {high}, got {value}")
        return value

    return parser(f"integer {low}..{high}")(parse)


@parser("true|false")
def boolean(value: Any, ctx: Context, path: str, line: int) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe_value(value)}")
    return value


def choice(*choices: str) -> Parser:
    def parse(value: Any, ctx: Context, path: str, line: int) -> str:
        if value not in choices or not isinstance(value, str):
            raise Invalid(f"{describe_value(value)} is not one of {', '.join(choices)}")
        return value

    return parser("|".join(choices))(parse)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


@parser("duration (30s, 10m, 6h, 1d)")
def duration(value: Any, ctx: Context, path: str, line: int) -> float:
    """``30s``, ``10m``, ``6h``, ``1d``, ``1h30m`` or a plain number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid(f"expected a duration such as 10m, got {describe_value(value)}")
    if isinstance(value, str):
        spelled = value.strip().replace(" ", "")
        body = spelled.removeprefix("-")
        if re.fullmatch(r"\d+(?:\.\d+)?", body):
            seconds = float(body)
        elif _DURATION.fullmatch(body):
            seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"([\d.]+)([smhd])", body))
        else:
            raise Invalid(f"{value!r} is not a duration (write e.g. 30s, 10m, 6h, 1d "
                          "or a number of seconds)")
        seconds = -seconds if spelled.startswith("-") else seconds
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise Invalid(f"must be a positive duration, got {describe_value(value)}")
    return seconds


@parser("secret reference")
def secret(value: Any, ctx: Context, path: str, line: int) -> Secret:
    """A secret must be exactly one reference: an inline value would sit in the YAML."""
    if not isinstance(value, str) or not REFERENCE.fullmatch(value.strip()):
        raise Invalid(f"is a secret: give it as {HOW_TO_REFER}, not inline")
    return Secret(ctx.resolve(value.strip()))


@parser("database URL")
def database_url(value: Any, ctx: Context, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a database URL, got {describe_value(value)}")
    resolved = ctx.resolve(value)  # a password may come from ${ENV}
    scheme = resolved.partition("://")[0]
    if not re.fullmatch(r"(sqlite|postgresql)(\+\w+)?", scheme):
        raise Invalid(f"{mask_url(resolved)!r} is not a supported database URL (expected "
                      "sqlite:////PATH or postgresql+psycopg://USER@HOST/DB)")
    if scheme.startswith("postgresql") and not _psycopg_installed():
        raise Invalid("PostgreSQL needs the psycopg driver, which is not installed: "
                      "pip install 'marketsync[postgres]'")
    return resolved


def _psycopg_installed() -> bool:
    """Checked here so check-config says it, not a traceback from ``run`` later."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


@parser("HOST:PORT")
def listen_address(value: Any, ctx: Context, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise Invalid(not_text(value))
    # ${ENV} allowed: replicas sharing one file take their port from their unit
    value = ctx.resolve(value)
    host, port = split_listen(value)
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Invalid(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8470)")
    return value


def split_listen(value: str) -> tuple[str, str]:
    host, _, port = value.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


@parser("URL")
def http_url(value: Any, ctx: Context, path: str, line: int) -> str:
    written = text()(value, ctx, path, line)
    if not re.fullmatch(r"https?://[^/\s?#]+(/\S*)?", written):
        raise Invalid(f"{written!r} is not an http(s) URL")
    return written.rstrip("/")


@parser("path")
def directory(value: Any, ctx: Context, path: str, line: int) -> Path:
    return ctx.base_dir / Path(text()(value, ctx, path, line)).expanduser()


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG; SVG is text


@parser("path to a PNG, JPEG or SVG")
def image_file(value: Any, ctx: Context, path: str, line: int) -> Path:
    """Checked now: a missing logo should stop the daemon, not the first label print."""
    written = text()(value, ctx, path, line)
    resolved = ctx.base_dir / Path(written).expanduser()
    try:
        with resolved.open("rb") as image:
            head = image.read(2048)
    except FileNotFoundError:
        raise Invalid(f"{written} does not exist (looked for {resolved})") from None
    except OSError as exc:
        raise Invalid(f"cannot read {resolved}: {exc.strerror or type(exc).__name__}") from None
    if any(head.startswith(magic) for magic in _IMAGE_MAGIC):
        return resolved
    if b"<svg" in head.lower() and b"\x00" not in head:
        return resolved
    raise Invalid(f"{written} is not a PNG, JPEG or SVG image")


@parser("path to a template file")
def template_file(value: Any, ctx: Context, path: str, line: int) -> Path:
    """Checked now, like the logo: a missing template should not wait for the first print."""
    written = text()(value, ctx, path, line)
    resolved = ctx.base_dir / Path(written).expanduser()
    try:
        resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Invalid(f"{written} does not exist (looked for {resolved})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {resolved} as UTF-8 text: "
                      f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    return resolved


@parser("format with {alias} and {number}")
def number_format(value: Any, ctx: Context, path: str, line: int) -> str:
    written = text()(value, ctx, path, line)
    try:
        first, second = written.format(alias="a", number=1), written.format(alias="a", number=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise Invalid(f"{written!r} is not usable ({exc}); use {{alias}} and {{number}}, "
                      "e.g. {alias}-{number:06d}") from None
    if first == second:
        raise Invalid(f"{written!r} does not contain {{number}}")
    return written


@parser("list of names")
def names(value: Any, ctx: Context, path: str, line: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected a list of names, got {describe_value(value)}")
    result, failed = [], False
    for index, item in enumerate(value):
        try:
            result.append(text()(item, ctx, path, line))
        except Invalid as exc:
            ctx.error(value.item_positions[index].line, join_path(path, index), exc.message)
            failed = True
    return FAILED if failed else tuple(result)


def plain_mapping(value_parser: Parser, label: str) -> Parser:
    """A mapping whose keys the channel knows; they are checked later against it."""

    def parse(value: Any, ctx: Context, path: str, line: int) -> Any:
        if not isinstance(value, YamlMapping):
            raise Invalid(f"expected a mapping, got {describe_value(value)}")
        result, failed = {}, False
        for key, item in value.items():
            item_path, item_line = join_path(path, key), value.value_positions[key].line
            ctx.lines[item_path] = item_line
            try:
                result[str(key)] = value_parser(item, ctx, item_path, item_line)
            except Invalid as exc:
                ctx.error(item_line, item_path, exc.message)
                failed = True
        return FAILED if failed else result

    return parser(label)(parse)


def raw_credential(value: Any, ctx: Context, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise Invalid(not_text(value))
    return value


def setting(help: str, parse: Parser, default: Any = MISSING, *, factory: Any = MISSING,
            shown: str | None = None) -> Any:
    """Declare a YAML key: how to parse it, its default, and one line for ``describe()``."""
    metadata = {"help": help, "parse": parse, "shown": shown}
    return field(default=default, default_factory=factory, metadata=metadata)


def section(cls: type) -> Parser:
    def parse(value: Any, ctx: Context, path: str, line: int) -> Any:
        # a missing key inside is reported on the line of the section's own key
        return build(cls, value, ctx, path, ctx.key_lines.get(path, line))

    return parser("mapping", cls)(parse)


def build(cls: type, node: Any, ctx: Context, path: str, line: int, **internal: Any) -> Any:
    """Walk ``cls``'s declared settings over ``node``; every problem goes to ``ctx``."""
    if not isinstance(node, YamlMapping):
        raise Invalid(f"expected a mapping, got {describe_value(node)}")
    declared = {f.name: f for f in fields(cls) if "parse" in f.metadata}
    failed = False
    for key, position in node.key_positions.items():
        if key not in declared:
            hint = did_you_mean(key, list(declared))
            ctx.error(position.line, join_path(path, key), f"unknown key ({hint})")
            failed = True
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        key_path, raw = join_path(path, name), node.get(name)
        if raw is None:  # absent or empty: the default, if there is one
            if spec.default is MISSING and spec.default_factory is MISSING:
                ctx.error(line, key_path, "is required")
                failed = True
            continue
        value_line = ctx.lines[key_path] = node.value_positions[name].line
        ctx.key_lines[key_path] = node.key_positions[name].line
        try:
            values[name] = spec.metadata["parse"](raw, ctx, key_path, value_line)
        except Invalid as exc:
            ctx.error(value_line, key_path, exc.message)
            values[name] = FAILED
    check = ctx.checks.get(cls)
    if check is not None:
        failed = not check(values, internal, ctx, path, line) or failed
    if failed or any(value is FAILED for value in values.values()):
        return FAILED
    return cls(**values, **internal)


def mapping_of(cls: type, name_pattern: str, hint: str) -> Parser:
    """``accounts:`` style: a name per entry, the name passed to ``cls`` as ``name``."""

    def parse(value: Any, ctx: Context, path: str, line: int) -> Any:
        if not isinstance(value, YamlMapping):
            raise Invalid(f"expected a mapping of names to entries, got {describe_value(value)}")
        result, failed = {}, False
        for key, item in value.items():
            item_path, key_line = join_path(path, key), value.key_positions[key].line
            ctx.account_channels.setdefault(str(key), None)  # known, even if broken
            if not isinstance(key, str) or not re.fullmatch(name_pattern, key):
                ctx.error(key_line, item_path, f"{key!r} is not a valid name ({hint})")
                failed = True
                continue
            try:
                built = build(cls, item, ctx, item_path, key_line, name=key)
            except Invalid as exc:
                ctx.error(value.value_positions[key].line, item_path, exc.message)
                built = FAILED
            failed = failed or built is FAILED
            result[key] = built
        return FAILED if failed else FrozenDict(result)

    return parser("mapping of name to entry", cls)(parse)
