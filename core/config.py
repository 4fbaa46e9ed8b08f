"""The daemon's one YAML file, validated into frozen dataclasses.

The file is the only thing an operator edits, often right after an upgrade, so a bad
file must fail before anything starts, with every problem at once, each as
``FILE:LINE: key.path: message``. Unknown keys are errors (a typo'd key silently
falling back to its default is the worst kind of config bug). Every key is declared
once, below, with its type, default and a one-line description; the validator walks
those declarations and ``describe()`` prints them, so the two cannot drift (tox's
``add_config``).

Channel knowledge is not written here: which marketplaces, credentials and jobs exist
comes from each plugin's ``ChannelInfo``. Secrets never sit in the YAML itself; they are
``${ENV}``, ``${file:PATH}`` or ``${credential:NAME}`` references, resolved while loading
so that a missing one is a config error naming its line, not a 401 an hour later.
"""

from __future__ import annotations

import copy
import difflib
import hmac
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from marketsync.core.errors import ConfigError
from marketsync.core.types import Address, ChannelInfo, Integration
from marketsync.core.yamlsource import YamlMapping, YamlSequence, join_path, load_yaml, read_yaml

__all__ = [
    "AccountConfig",
    "Config",
    "ContactConfig",
    "FrozenDict",
    "HttpConfig",
    "IntegrationConfig",
    "LogConfig",
    "PiiConfig",
    "PluginsConfig",
    "ReturnAddressConfig",
    "Secret",
    "SettingDoc",
    "describe",
    "disabled_plugins",
    "explain",
    "format_duration",
    "load_config",
    "mask_url",
    "parse_config",
    "validate_config",
]

frozen = dataclass(frozen=True, slots=True, kw_only=True)


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


_REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOW_TO_REFER = '"${ENV_VAR}", "${file:PATH}" or "${credential:NAME}"'


def mask_url(url: str) -> str:
    """A database URL fit for logs and ``status``: the password becomes ``***``."""
    masked = re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"((?:^|[?&])password=)[^&]*", r"\1***", masked, flags=re.I)


# --- validation machinery -------------------------------------------------------------------


class _Invalid(Exception):
    """A value is wrong; the message says why, never what a secret contained."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_FAILED: Any = type("_Failed", (), {"__repr__": lambda self: "<failed>"})()


@dataclass(slots=True)
class _Context:
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

    def error(self, line: int, path: str, message: str) -> None:
        where = f"{self.filename}:{line}: " + (f"{path}: " if path else "")
        self.errors.append((line, where + message))

    def resolve(self, value: str) -> str:
        """Expand every ``${...}`` reference in ``value``."""
        return _REFERENCE.sub(lambda m: self._reference(m.group(1)), value)

    def _reference(self, ref: str) -> str:
        kind, _, name = ref.partition(":")
        if not name and _ENV_NAME.fullmatch(kind):
            if kind not in self.environ:
                raise _Invalid(f"environment variable {kind} is not set")
            return _non_empty(self.environ[kind], f"environment variable {kind}")
        if kind == "file" and name:
            path = self.base_dir / Path(name).expanduser()
            return _non_empty(_read_secret(path, f"secret file {path}"), f"secret file {path}")
        if kind == "credential" and name:
            if "/" in name or name in (".", ".."):
                raise _Invalid(f"credential name {name!r} must not contain '/'")
            directory = self.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise _Invalid(
                    f"${{credential:{name}}} needs $CREDENTIALS_DIRECTORY, which systemd "
                    "sets for LoadCredential=; it is not set (outside systemd use ${file:PATH})"
                )
            path = Path(directory) / name
            content = _read_secret(path, f"credential {name} ({path})")
            return _non_empty(content, f"credential {name}")
        raise _Invalid(f"'${{{ref}}}' is not a valid reference (expected {_HOW_TO_REFER})")


def _read_secret(path: Path, what: str) -> str:
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _Invalid(f"{what} is not UTF-8 text") from None
    except OSError as exc:
        raise _Invalid(f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    # Editors end files with a newline that is not part of the secret.
    return content[:-2] if content.endswith("\r\n") else content.removesuffix("\n")


def _non_empty(value: str, what: str) -> str:
    if not value:
        raise _Invalid(f"{what} is empty")
    return value


def _describe_value(value: object) -> str:
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


def _not_text(value: object) -> str:
    if value is None:
        return "is empty"
    quote = "" if isinstance(value, (list, dict)) else " (put it in quotes)"
    return f"expected text, got {_describe_value(value)}{quote}"


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(choices)


# A parser turns one YAML value into its typed form or raises _Invalid. ``label`` is the
# type as ``describe()`` shows it. Collections report their members' errors themselves
# and return _FAILED.
Parser = Callable[[Any, _Context, str, int], Any]


def _parser(label: str, cls: type | None = None) -> Callable[[Parser], Parser]:
    """Attach what ``describe()`` shows: the type's label, and the nested class if any."""

    def mark(parse: Parser) -> Parser:
        parse.label, parse.cls = label, cls  # type: ignore[attr-defined]
        return parse

    return mark


def _text(pattern: str | None = None, hint: str = "", label: str = "text") -> Parser:
    compiled = re.compile(pattern) if pattern else None

    def parse(value: Any, ctx: _Context, path: str, line: int) -> str:
        if not isinstance(value, str):
            raise _Invalid(_not_text(value))
        if "${" in value:
            raise _Invalid("${...} references are only expanded in secrets "
                           "(credentials, http.token, pii.key) and database")
        if compiled and not compiled.fullmatch(value):
            raise _Invalid(f"{value!r} is not valid ({hint})")
        return value

    return _parser(label)(parse)


def _integer(low: int, high: int) -> Parser:
    def parse(value: Any, ctx: _Context, path: str, line: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected a whole number, got {_describe_value(value)}")
        if not low <= value <= high:
            raise _Invalid(f"must be between {low} and {high}, got {value}")
        return value

    return _parser(f"integer {low}..{high}")(parse)


@_parser("true|false")
def _boolean(value: Any, ctx: _Context, path: str, line: int) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe_value(value)}")
    return value


def _choice(*choices: str) -> Parser:
    def parse(value: Any, ctx: _Context, path: str, line: int) -> str:
        if value not in choices or not isinstance(value, str):
            raise _Invalid(f"{_describe_value(value)} is not one of {', '.join(choices)}")
        return value

    return _parser("|".join(choices))(parse)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


@_parser("duration (30s, 10m, 6h, 1d)")
def _duration(value: Any, ctx: _Context, path: str, line: int) -> float:
    """``30s``, ``10m``, ``6h``, ``1d``, ``1h30m`` or a plain number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Invalid(f"expected a duration such as 10m, got {_describe_value(value)}")
    if isinstance(value, str):
        spelled = value.strip().replace(" ", "")
        body = spelled.removeprefix("-")
        if re.fullmatch(r"\d+(?:\.\d+)?", body):
            seconds = float(body)
        elif _DURATION.fullmatch(body):
            seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"([\d.]+)([smhd])", body))
        else:
            raise _Invalid(f"{value!r} is not a duration (write e.g. 30s, 10m, 6h, 1d "
                           "or a number of seconds)")
        seconds = -seconds if spelled.startswith("-") else seconds
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise _Invalid(f"must be a positive duration, got {_describe_value(value)}")
    return seconds


@_parser("secret reference")
def _secret(value: Any, ctx: _Context, path: str, line: int) -> Secret:
    """A secret must be exactly one reference: an inline value would sit in the YAML."""
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value.strip()):
        raise _Invalid(f"is a secret: give it as {_HOW_TO_REFER}, not inline")
    return Secret(ctx.resolve(value.strip()))


@_parser("database URL")
def _database(value: Any, ctx: _Context, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a database URL, got {_describe_value(value)}")
    resolved = ctx.resolve(value)  # a password may come from ${ENV}
    scheme = resolved.partition("://")[0]
    if not re.fullmatch(r"(sqlite|postgresql)(\+\w+)?", scheme):
        raise _Invalid(f"{mask_url(resolved)!r} is not a supported database URL (expected "
                       "sqlite:////PATH or postgresql+psycopg://USER@HOST/DB)")
    return resolved


@_parser("HOST:PORT")
def _listen(value: Any, ctx: _Context, path: str, line: int) -> str:
    host, port = _split_listen(_text()(value, ctx, path, line))
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _Invalid(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8470)")
    return value


def _split_listen(value: str) -> tuple[str, str]:
    host, _, port = value.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


@_parser("URL")
def _url(value: Any, ctx: _Context, path: str, line: int) -> str:
    text = _text()(value, ctx, path, line)
    if not re.fullmatch(r"https?://[^/\s?#]+(/\S*)?", text):
        raise _Invalid(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


@_parser("path")
def _directory(value: Any, ctx: _Context, path: str, line: int) -> Path:
    return ctx.base_dir / Path(_text()(value, ctx, path, line)).expanduser()


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG; SVG is text


@_parser("path to a PNG, JPEG or SVG")
def _image(value: Any, ctx: _Context, path: str, line: int) -> Path:
    """Checked now: a missing logo should stop the daemon, not the first label print."""
    written = _text()(value, ctx, path, line)
    resolved = ctx.base_dir / Path(written).expanduser()
    try:
        with resolved.open("rb") as image:
            head = image.read(2048)
    except FileNotFoundError:
        raise _Invalid(f"{written} does not exist (looked for {resolved})") from None
    except OSError as exc:
        raise _Invalid(f"cannot read {resolved}: {exc.strerror or type(exc).__name__}") from None
    if any(head.startswith(magic) for magic in _IMAGE_MAGIC):
        return resolved
    if b"<svg" in head.lower() and b"\x00" not in head:
        return resolved
    raise _Invalid(f"{written} is not a PNG, JPEG or SVG image")


@_parser("path to a template file")
def _template_file(value: Any, ctx: _Context, path: str, line: int) -> Path:
    """Checked now, like the logo: a missing template should not wait for the first print."""
    written = _text()(value, ctx, path, line)
    resolved = ctx.base_dir / Path(written).expanduser()
    try:
        resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Invalid(f"{written} does not exist (looked for {resolved})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Invalid(f"cannot read {resolved} as UTF-8 text: "
                       f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    return resolved


@_parser("format with {alias} and {number}")
def _number_format(value: Any, ctx: _Context, path: str, line: int) -> str:
    text = _text()(value, ctx, path, line)
    try:
        first, second = text.format(alias="a", number=1), text.format(alias="a", number=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise _Invalid(f"{text!r} is not usable ({exc}); use {{alias}} and {{number}}, "
                       "e.g. {alias}-{number:06d}") from None
    if first == second:
        raise _Invalid(f"{text!r} does not contain {{number}}")
    return text


@_parser("list of names")
def _names(value: Any, ctx: _Context, path: str, line: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"expected a list of names, got {_describe_value(value)}")
    result, failed = [], False
    for index, item in enumerate(value):
        try:
            result.append(_text()(item, ctx, path, line))
        except _Invalid as exc:
            ctx.error(value.item_positions[index].line, join_path(path, index), exc.message)
            failed = True
    return _FAILED if failed else tuple(result)


def _plain_mapping(value_parser: Parser, label: str) -> Parser:
    """A mapping whose keys the channel knows; they are checked later against it."""

    def parse(value: Any, ctx: _Context, path: str, line: int) -> Any:
        if not isinstance(value, YamlMapping):
            raise _Invalid(f"expected a mapping, got {_describe_value(value)}")
        result, failed = {}, False
        for key, item in value.items():
            item_path, item_line = join_path(path, key), value.value_positions[key].line
            ctx.lines[item_path] = item_line
            try:
                result[str(key)] = value_parser(item, ctx, item_path, item_line)
            except _Invalid as exc:
                ctx.error(item_line, item_path, exc.message)
                failed = True
        return _FAILED if failed else result

    return _parser(label)(parse)


def _raw_credential(value: Any, ctx: _Context, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(_not_text(value))
    return value


def setting(help: str, parse: Parser, default: Any = MISSING, *, factory: Any = MISSING,
            shown: str | None = None) -> Any:
    """Declare a YAML key: how to parse it, its default, and one line for ``describe()``."""
    metadata = {"help": help, "parse": parse, "shown": shown}
    return field(default=default, default_factory=factory, metadata=metadata)


def _section(cls: type) -> Parser:
    def parse(value: Any, ctx: _Context, path: str, line: int) -> Any:
        # a missing key inside is reported on the line of the section's own key
        return _build(cls, value, ctx, path, ctx.key_lines.get(path, line))

    return _parser("mapping", cls)(parse)


def _build(cls: type, node: Any, ctx: _Context, path: str, line: int, **internal: Any) -> Any:
    """Walk ``cls``'s declared settings over ``node``; every problem goes to ``ctx``."""
    if not isinstance(node, YamlMapping):
        raise _Invalid(f"expected a mapping, got {_describe_value(node)}")
    declared = {f.name: f for f in fields(cls) if "parse" in f.metadata}
    failed = False
    for key, position in node.key_positions.items():
        if key not in declared:
            hint = _did_you_mean(key, list(declared))
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
        except _Invalid as exc:
            ctx.error(value_line, key_path, exc.message)
            values[name] = _FAILED
    check = _CHECKS.get(cls)
    if check is not None:
        failed = not check(values, internal, ctx, path, line) or failed
    if failed or any(value is _FAILED for value in values.values()):
        return _FAILED
    return cls(**values, **internal)


def _mapping_of(cls: type, name_pattern: str, hint: str) -> Parser:
    """``accounts:`` style: a name per entry, the name passed to ``cls`` as ``name``."""

    def parse(value: Any, ctx: _Context, path: str, line: int) -> Any:
        if not isinstance(value, YamlMapping):
            raise _Invalid(f"expected a mapping of names to entries, got {_describe_value(value)}")
        result, failed = {}, False
        for key, item in value.items():
            item_path, key_line = join_path(path, key), value.key_positions[key].line
            ctx.account_channels.setdefault(str(key), None)  # known, even if broken
            if not isinstance(key, str) or not re.fullmatch(name_pattern, key):
                ctx.error(key_line, item_path, f"{key!r} is not a valid name ({hint})")
                failed = True
                continue
            try:
                built = _build(cls, item, ctx, item_path, key_line, name=key)
            except _Invalid as exc:
                ctx.error(value.value_positions[key].line, item_path, exc.message)
                built = _FAILED
            failed = failed or built is _FAILED
            result[key] = built
        return _FAILED if failed else FrozenDict(result)

    return _parser("mapping of name to entry", cls)(parse)


def _integrations(value: Any, ctx: _Context, path: str, line: int) -> Any:
    if not isinstance(value, YamlSequence):
        raise _Invalid("expected a list of integrations (- alias: ...), "
                       f"got {_describe_value(value)}")
    result, failed = [], False
    seen_alias: dict[str, int] = {}
    seen_market: dict[tuple[str, str], tuple[str, int]] = {}
    for index, item in enumerate(value):
        item_path, item_line = join_path(path, index), value.item_positions[index].line
        try:
            built = _build(IntegrationConfig, item, ctx, item_path, item_line)
        except _Invalid as exc:
            ctx.error(item_line, item_path, exc.message)
            built = _FAILED
        failed = failed or built is _FAILED
        result.append(built)
        if not isinstance(item, YamlMapping):
            continue
        alias, account, market = item.get("alias"), item.get("account"), item.get("marketplace")
        if isinstance(alias, str):
            alias_line = item.value_positions["alias"].line
            if alias in seen_alias:
                ctx.error(alias_line, join_path(item_path, "alias"),
                          f"duplicate alias {alias!r} (first used at line {seen_alias[alias]})")
                failed = True
            seen_alias.setdefault(alias, alias_line)
        if isinstance(account, str) and isinstance(market, str):
            market_line = item.value_positions["marketplace"].line
            other = seen_market.setdefault((account, market), (str(alias), market_line))
            if other[1] != market_line:
                ctx.error(market_line, join_path(item_path, "marketplace"),
                          f"account {account!r} already has an integration for {market} "
                          f"({other[0]!r} at line {other[1]}); orders would be imported twice")
                failed = True
    return _FAILED if failed else tuple(result)

_NAME = r"[a-z0-9][a-z0-9_-]{0,63}"
_NAME_HINT = "lower-case letters, digits, '-' and '_'"


# --- the schema -------------------------------------------------------------------------------


@frozen
class HttpConfig:
    """The small HTTP surface: status page, OAuth callback, /metrics, /healthz."""

    listen: str = setting("address the status page listens on", _listen, "127.0.0.1:8470")
    token: Secret | None = setting("bearer token the HTTP API requires (secret)", _secret, None)

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return int(_split_listen(self.listen)[1])


@frozen
class LogConfig:
    format: str = setting("human for a terminal, json for log shippers",
                          _choice("human", "json"), "human")
    level: str = setting("lowest level written", _choice("DEBUG", "INFO", "WARNING", "ERROR"),
                         "INFO")


@frozen
class PluginsConfig:
    disabled: tuple[str, ...] = setting("plugins not to load (their integrations stop)",
                                        _names, (), shown="[]")


@frozen
class PiiConfig:
    key: Secret | None = setting("key that encrypts buyer names and addresses at rest (secret)",
                                 _secret, None)


@frozen
class AccountConfig:
    """One seller login on one channel; its integrations share credentials and rate limits."""

    name: str  #: the key under ``accounts:``
    channel: str = setting("channel plugin that serves this account, e.g. amazon",
                           _text(label="channel name"))
    endpoint: str | None = setting("base URL override, e.g. the simulator's", _url, None,
                                   shown="the channel's own")
    credentials: Mapping[str, str | Secret] = setting(
        "the channel's credentials; secret ones as references",
        _plain_mapping(_raw_credential, "mapping"), factory=FrozenDict, shown="{}")
    #: why the channel's plugin is not loaded; then ``credentials`` is empty and unchecked
    unavailable: str | None = None

    def __repr__(self) -> str:
        return f"AccountConfig(name={self.name!r}, channel={self.channel!r})"

    def resolved_credentials(self) -> dict[str, str]:
        """Plain strings for ``Integration.credentials``: the plugin needs the text."""
        return {k: v.value if isinstance(v, Secret) else v for k, v in self.credentials.items()}


@frozen
class ReturnAddressConfig:
    name: str = setting("addressee", _text())
    line1: str = setting("street and number", _text())
    line2: str | None = setting("second address line", _text(), None)
    city: str = setting("city", _text())
    postal_code: str = setting("postal code", _text())
    country_code: str = setting("ISO 3166 country code", _text(r"[A-Z]{2}", "two capital "
                                "letters, e.g. DE", "country code"))
    state: str | None = setting("state or region", _text(), None)
    phone: str | None = setting("phone number", _text(), None)

    def to_address(self) -> Address:
        return Address(name=self.name, line1=self.line1, line2=self.line2, city=self.city,
                       postal_code=self.postal_code, country_code=self.country_code,
                       state=self.state, phone=self.phone)


@frozen
class ContactConfig:
    phone: str | None = setting("seller phone shown to buyers", _text(), None)
    email: str | None = setting("seller e-mail shown to buyers",
                                _text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"), None)
    mode: str = setting("prefill: only where empty; overwrite: always",
                        _choice("prefill", "overwrite"), "prefill")


@frozen
class DocumentsConfig:
    invoice_template: Path | None = setting(
        "HTML (Jinja) template for invoices, relative to this file; default: the built-in one",
        _template_file, None)
    packing_slip_template: Path | None = setting(
        "HTML (Jinja) template for packing slips, relative to this file", _template_file, None)
    invoice_number_format: str = setting(
        "how invoice numbers look; {number} counts per integration, never reused",
        _number_format, "{alias}-{number:06d}")


@frozen
class IntegrationConfig:
    """One account selling in one marketplace: the unit that has jobs and a state."""

    alias: str = setting("unique name used in logs, status and CLI commands",
                         _text(_NAME, _NAME_HINT, "name"))
    account: str = setting("key of the account under accounts:", _text(label="account name"))
    channel: str = setting("must match the account's channel", _text(label="channel name"),
                           None, shown="the account's")
    marketplace: str = setting("marketplace code the channel knows, e.g. DE",
                               _text(label="marketplace code"))
    enabled: bool = setting("false keeps the integration configured but stopped", _boolean, True)
    orders: str = setting("which orders to import", _choice("FBA", "MFN", "both"), "both")
    history_days: int = setting("how far back the first order import reaches",
                                _integer(1, 30), 30)
    inventory: str = setting("which stock to sync: MFN pushed, FBA imported",
                             _choice("FBA", "MFN", "both", "none"), "both")
    handling_time_days: int = setting("days to ship merchant-fulfilled orders",
                                      _integer(0, 30), 1)
    ioss_number: str | None = setting("EU import one-stop-shop number for invoices",
                                      _text(r"IM\d{10}", "IM followed by 10 digits",
                                            "IOSS number"), None)
    logo: Path | None = setting("logo for documents, relative to this file", _image, None)
    return_address: ReturnAddressConfig | None = setting(
        "where buyers send returns", _section(ReturnAddressConfig), None)
    contact: ContactConfig | None = setting("seller contact for buyers",
                                            _section(ContactConfig), None)
    documents: DocumentsConfig | None = setting("invoice and packing slip settings",
                                                _section(DocumentsConfig), None)
    schedule: Mapping[str, float] = setting(
        "job kind -> how often it runs; overrides the channel's default",
        _plain_mapping(_duration, "mapping of job kind to duration"), factory=FrozenDict,
        shown="{}")
    #: the channel's ``JobDefault.every`` per job kind; ``schedule`` overrides it
    default_schedule: Mapping[str, float] = field(default_factory=FrozenDict, repr=False)
    #: why the channel's plugin is not loaded: the core keeps this integration stopped, in
    #: ERROR with this reason; marketplace and schedule were not checked against the channel
    unavailable: str | None = None

    def schedule_for(self, kind: str) -> float:
        """Seconds between runs of ``kind``: the YAML's override, else the channel's."""
        if kind in self.schedule:
            return self.schedule[kind]
        try:
            return self.default_schedule[kind]
        except KeyError:
            raise KeyError(f"channel {self.channel!r} has no job {kind!r}") from None

    @property
    def settings(self) -> Mapping[str, Any]:
        """The YAML section as ``Integration.settings`` hands it to the plugin."""
        return FrozenDict({f.name: getattr(self, f.name) for f in fields(self)
                                 if "parse" in f.metadata})


_parser("list of integrations", IntegrationConfig)(_integrations)


@frozen
class Config:
    """The whole file, validated; ``source`` is where it was read from."""

    source: Path
    state_dir: Path = setting("where the daemon keeps its database and files", _directory,
                              None, shown="$STATE_DIRECTORY, else ./state")
    database: str = setting("SQLAlchemy URL; sqlite or postgresql+psycopg", _database, None,
                            shown="sqlite file in state_dir")
    http: HttpConfig = setting("status page and API", _section(HttpConfig), factory=HttpConfig)
    log: LogConfig = setting("logging", _section(LogConfig), factory=LogConfig)
    plugins: PluginsConfig = setting("plugin loading", _section(PluginsConfig),
                                     factory=PluginsConfig)
    pii: PiiConfig = setting("buyer data protection", _section(PiiConfig), factory=PiiConfig)
    accounts: Mapping[str, AccountConfig] = setting(
        "seller accounts by name", _mapping_of(AccountConfig, _NAME, _NAME_HINT),
        factory=FrozenDict, shown="{}")
    integrations: tuple[IntegrationConfig, ...] = setting(
        "one entry per account and marketplace", _integrations, ())

    def __repr__(self) -> str:
        return (f"Config(source={str(self.source)!r}, database={mask_url(self.database)!r}, "
                f"integrations={[i.alias for i in self.integrations]!r})")

    @property
    def database_display(self) -> str:
        return mask_url(self.database)

    def integration(self, alias: str) -> IntegrationConfig:
        for integration in self.integrations:
            if integration.alias == alias:
                return integration
        raise KeyError(f"no integration {alias!r} (known: {', '.join(self.aliases())})")

    def aliases(self) -> list[str]:
        return [i.alias for i in self.integrations]

    def make_integration(self, alias: str, **tools: Any) -> Integration:
        """The ``core.types.Integration`` hooks receive; ``tools`` are http, log, runtimes."""
        config = self.integration(alias)
        return Integration(alias=config.alias, channel=config.channel, account=config.account,
                           marketplace=config.marketplace, settings=config.settings,
                           credentials=self.accounts[config.account].resolved_credentials(),
                           **tools)


# --- checks that span keys --------------------------------------------------------------------


def _check_account(values: dict, internal: dict, ctx: _Context, path: str, line: int) -> bool:
    channel = values.get("channel")
    reason = ctx.unavailable.get(channel) if isinstance(channel, str) else None
    info = ctx.channels.get(channel) if isinstance(channel, str) and not reason else None
    ctx.account_channels[internal["name"]] = channel if info is not None or reason else None
    if reason:  # a broken or disabled plugin costs its channel, not the whole file
        internal["unavailable"] = reason
        values["credentials"] = FrozenDict({})
        return True
    if isinstance(channel, str) and info is None:
        ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                  f"{channel!r} is not a known channel (known: {', '.join(sorted(ctx.channels))})")
        return False
    raw = values.get("credentials", {})
    if info is None or raw is _FAILED:
        return True
    ok, resolved = True, {}
    cred_path = join_path(path, "credentials")
    for key in sorted(info.required_credentials - set(raw)):
        ctx.error(ctx.key_lines.get(cred_path, line), join_path(cred_path, key),
                  f"is required by channel {channel!r}")
        ok = False
    for key, value in raw.items():
        key_path = join_path(cred_path, key)
        where = ctx.lines[key_path]
        if key not in info.credential_keys:
            ctx.error(where, key_path, f"unknown credential for channel {channel!r} "
                      f"({_did_you_mean(key, sorted(info.credential_keys))})")
            ok = False
            continue
        try:
            if key in info.secret_credentials:
                resolved[key] = _secret(value, ctx, key_path, where)
            else:
                resolved[key] = ctx.resolve(value)
        except _Invalid as exc:
            ctx.error(where, key_path, exc.message)
            ok = False
    values["credentials"] = FrozenDict(resolved)
    return ok


def _article_title(info: ChannelInfo) -> str:
    short = info.title.split(" (")[0] or info.name
    return ("an " if short[:1].lower() in "aeiou" else "a ") + short


def _check_integration(values: dict, internal: dict, ctx: _Context, path: str, line: int) -> bool:
    ok, account, given = True, values.get("account"), values.get("channel")
    channel = given if isinstance(given, str) else None
    if isinstance(account, str):
        if account not in ctx.account_channels:
            known = ", ".join(sorted(ctx.account_channels)) or "none declared"
            ctx.error(ctx.lines[join_path(path, "account")], join_path(path, "account"),
                      f"unknown account {account!r} (known: {known})")
            ok = False
        elif ctx.account_channels[account] is None:
            ok = False  # the account's own errors are reported where it is declared
        else:
            own = ctx.account_channels[account]
            if channel is not None and channel != own:
                ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                          f"{channel!r} does not match account {account!r}, "
                          f"whose channel is {own!r}")
                ok = False
            channel = values["channel"] = own
    if channel in ctx.unavailable:
        internal["unavailable"] = ctx.unavailable[channel]
        return ok
    info = ctx.channels.get(channel) if channel else None
    if channel and info is None and given is not None and ok:
        ctx.error(ctx.lines[join_path(path, "channel")], join_path(path, "channel"),
                  f"{channel!r} is not a known channel (known: {', '.join(sorted(ctx.channels))})")
        return False
    if info is None:
        return ok
    market = values.get("marketplace")
    if isinstance(market, str) and market not in info.marketplaces:
        meant = [code for code, m in info.marketplaces.items()
                 if market.upper() == code or market in (m.id, m.name)]
        hint = f"did you mean {meant[0]!r}? " if meant else ""
        ctx.error(ctx.lines[join_path(path, "marketplace")], join_path(path, "marketplace"),
                  f"{market!r} is not {_article_title(info)} marketplace "
                  f"({hint}known: {', '.join(sorted(info.marketplaces))})")
        ok = False
    jobs = {job.kind: float(job.every) for job in info.jobs}
    schedule = values.get("schedule", {})
    for kind in schedule if schedule is not _FAILED else ():
        if kind not in jobs:
            key_path = join_path(join_path(path, "schedule"), kind)
            ctx.error(ctx.lines[key_path], key_path, f"not a job of channel {channel!r} "
                      f"({_did_you_mean(kind, sorted(jobs))})")
            ok = False
    if ok and schedule is not _FAILED:
        values["schedule"] = FrozenDict(dict(schedule))
    internal["default_schedule"] = FrozenDict(jobs)
    return ok


def _check_config(values: dict, internal: dict, ctx: _Context, path: str, line: int) -> bool:
    if "state_dir" not in values:
        systemd = ctx.environ.get("STATE_DIRECTORY", "").split(":")[0]
        values["state_dir"] = Path(systemd) if systemd else Path.cwd() / "state"
    if "database" not in values and values.get("state_dir") is not _FAILED:
        values["database"] = f"sqlite:///{values['state_dir'] / 'marketsync.sqlite'}"
    return True


_CHECKS: dict[type, Callable[[dict, dict, _Context, str, int], bool]] = {
    AccountConfig: _check_account,
    IntegrationConfig: _check_integration,
    Config: _check_config,
}


# --- entry points -----------------------------------------------------------------------------


def _validate(root: Any, filename: str, base_dir: Path, channels: Mapping[str, ChannelInfo],
              environ: Mapping[str, str], unavailable: Mapping[str, str] | None) -> Config:
    if root is None:
        raise ConfigError([f"{filename}:1: the file is empty; expected settings such as "
                           "accounts: and integrations: (see config/example.yaml)"])
    if not isinstance(root, YamlMapping):
        line = root.position.line if isinstance(root, YamlSequence) else 1
        raise ConfigError([f"{filename}:{line}: the top level must be a mapping of settings, "
                           f"got {_describe_value(root)}"])
    disabled = {name: "its plugin is disabled under plugins.disabled"
                for name in disabled_plugins(root) if name not in (unavailable or {})}
    ctx = _Context(filename, base_dir, channels, environ, {**disabled, **(unavailable or {})})
    config = _build(Config, root, ctx, "", 1, source=base_dir / Path(filename).name)
    if ctx.errors or config is _FAILED:
        ordered = sorted(ctx.errors, key=lambda error: error[0])
        raise ConfigError([message for _line, message in ordered])
    return config


def disabled_plugins(root: Any) -> list[str]:
    """``plugins.disabled`` read leniently from a loaded file, before plugins are loaded.

    The plugin manager needs this list before there are channels to validate against;
    mistakes in it are reported by the full validation afterwards.
    """
    plugins = root.get("plugins") if isinstance(root, dict) else None
    names = plugins.get("disabled") if isinstance(plugins, dict) else None
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def load_config(path: str | os.PathLike[str], channels: Mapping[str, ChannelInfo], *,
                environ: Mapping[str, str] = os.environ,
                unavailable: Mapping[str, str] | None = None) -> Config:
    """Read and validate the YAML file at ``path``.

    :param channels: ``ChannelInfo`` by channel name, from the loaded plugins.
    :param environ: where ``${ENV}`` and ``$CREDENTIALS_DIRECTORY`` are looked up.
    :param unavailable: channel name -> why its plugin could not be loaded. Accounts and
        integrations on such a channel (or on a name in ``plugins.disabled``) are kept
        with ``.unavailable`` set instead of failing the whole file.
    :raises ConfigError: with every problem found, sorted by line.
    """
    root = read_yaml(path)
    return _validate(root, str(path), Path(path).absolute().parent, channels, environ,
                     unavailable)


def parse_config(text: str, channels: Mapping[str, ChannelInfo], *, filename: str = "<config>",
                 base_dir: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] = os.environ,
                 unavailable: Mapping[str, str] | None = None) -> Config:
    """Validate YAML text as if read from ``filename``.

    Relative paths in it resolve against ``base_dir``; by default the directory of
    ``filename`` when that names a file, else the current directory.
    """
    if base_dir is not None:
        directory = Path(base_dir)
    elif not filename.startswith("<"):
        directory = Path(filename).absolute().parent
    else:
        directory = Path.cwd()
    return _validate(load_yaml(text, filename), filename, directory, channels, environ,
                     unavailable)


def validate_config(path: str | os.PathLike[str], channels: Mapping[str, ChannelInfo], *,
                    environ: Mapping[str, str] = os.environ,
                    unavailable: Mapping[str, str] | None = None) -> list[str]:
    """``check-config``: every problem in the file, or ``[]`` when it is valid."""
    try:
        load_config(path, channels, environ=environ, unavailable=unavailable)
    except ConfigError as exc:
        return exc.errors
    return []


# --- describe / --explain ---------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Seconds as the YAML would spell them: 600 -> ``10m``, 21600 -> ``6h``, 90 -> ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@frozen
class SettingDoc:
    path: str
    type: str
    default: str
    help: str


def _docs(cls: type, prefix: str) -> list[SettingDoc]:
    result = []
    for spec in fields(cls):
        if "parse" not in spec.metadata:
            continue
        path, parse = join_path(prefix, spec.name), spec.metadata["parse"]
        if spec.metadata["shown"] is not None:
            default = spec.metadata["shown"]
        elif spec.default is not MISSING:
            default = "-" if spec.default is None else str(spec.default).lower() \
                if isinstance(spec.default, bool) else str(spec.default)
        else:
            default = "-" if spec.default_factory is not MISSING else "required"
        result.append(SettingDoc(path=path, type=parse.label, default=default,
                                 help=spec.metadata["help"]))
        nested = getattr(parse, "cls", None)
        if nested is not None:
            suffix = {IntegrationConfig: "[]", AccountConfig: ".<name>"}.get(nested, "")
            result.extend(_docs(nested, path + suffix))
    return result


def describe(channels: Mapping[str, ChannelInfo] | None = None) -> list[SettingDoc]:
    """Every key the file accepts; with ``channels``, their credentials and jobs too."""
    result = _docs(Config, "")
    for name, info in sorted((channels or {}).items()):
        for key, help_text in info.credential_keys.items():
            flags = [w for w, on in (("required", key in info.required_credentials),
                                     ("secret", key in info.secret_credentials)) if on]
            result.append(SettingDoc(path=f"accounts.<name>.credentials.{key}",
                                     type=f"{name} credential" + (f" ({', '.join(flags)})"
                                                                  if flags else ""),
                                     default="-", help=help_text))
        for job in info.jobs:
            result.append(SettingDoc(path=f"integrations[].schedule.{job.kind}",
                                     type=f"{name} job, duration",
                                     default=format_duration(job.every),
                                     help=f"how often {job.kind} runs"))
    return result


def explain(channels: Mapping[str, ChannelInfo] | None = None) -> str:
    """``check-config --explain``: one line per key, aligned."""
    docs = describe(channels)
    width = max(len(d.path) for d in docs)
    return "\n".join(f"{d.path:<{width}}  {d.help} [{d.type}; default: {d.default}]"
                     for d in docs)
