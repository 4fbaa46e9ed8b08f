"""Read YAML and remember where every key and value came from.

A configuration error is only useful when it names the line to fix, and PyYAML's
``safe_load`` forgets positions as soon as it has built its dicts. So we compose the
node graph (nodes carry ``start_mark``) and build the Python values ourselves: mappings
and sequences become ``dict``/``list`` subclasses that keep the position of each key and
item, scalars stay plain Python values and are located through their container.

We also refuse what ``safe_load`` lets pass silently: a key written twice (PyYAML keeps
the last one, so a typo'd copy-paste quietly wins) and custom tags (``!secret`` is
not how this project spells secrets; ``${...}`` references are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from marketsync.core.errors import ConfigError

__all__ = ["Position", "YamlMapping", "YamlSequence", "join_path", "load_yaml", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "omap")
)


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column, as editors count."""

    line: int
    column: int

    @classmethod
    def of(cls, node: Node) -> "Position":
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


class YamlMapping(dict):
    """A mapping that knows where it, each key and each value start."""

    __slots__ = ("position", "key_positions", "value_positions")

    def __init__(self, position: Position):
        super().__init__()
        self.position = position
        self.key_positions: dict[Any, Position] = {}
        self.value_positions: dict[Any, Position] = {}


class YamlSequence(list):
    """A sequence that knows where it and each item start."""

    __slots__ = ("position", "item_positions")

    def __init__(self, position: Position):
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []


def join_path(path: str, key: object) -> str:
    """``accounts`` + ``eu-main`` -> ``accounts.eu-main``; an int key indexes: ``[2]``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _location(filename: str, position: Position, path: str) -> str:
    return f"{filename}:{position.line}: {path}: " if path else f"{filename}:{position.line}: "


class _Builder:
    """Turns composed nodes into located values, collecting every problem it meets."""

    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[tuple[int, str]] = []
        self._scalars = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()  # nodes being built, to stop recursive aliases
        # An alias shares what its anchor built, as safe_load does: rebuilding it per use
        # would let a few lines of nested aliases ("billion laughs") take forever.
        self._built: dict[int, Any] = {}

    def error(self, position: Position, path: str, message: str) -> None:
        self.errors.append((position.line, _location(self.filename, position, path) + message))

    def build(self, node: Node, path: str) -> Any:
        if node.tag not in _STANDARD_TAGS:
            self.error(
                Position.of(node),
                path,
                f"unsupported YAML tag {node.tag!r} (secrets are written as "
                '"${ENV_VAR}", "${file:PATH}" or "${credential:NAME}")',
            )
            return None
        if isinstance(node, ScalarNode):
            return self._scalars.construct_object(node, deep=True)
        if id(node) in self._built:
            return self._built[id(node)]
        if id(node) in self._active:
            self.error(Position.of(node), path, "an alias refers to itself")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                built: Any = self._mapping(node, path)
            else:
                assert isinstance(node, SequenceNode)
                built = self._sequence(node, path)
        finally:
            self._active.discard(id(node))
        self._built[id(node)] = built
        return built

    def _sequence(self, node: SequenceNode, path: str) -> YamlSequence:
        result = YamlSequence(Position.of(node))
        for index, item in enumerate(node.value):
            result.item_positions.append(Position.of(item))
            result.append(self.build(item, join_path(path, index)))
        return result

    def _mapping(self, node: MappingNode, path: str) -> YamlMapping:
        result = YamlMapping(Position.of(node))
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            self._put(result, key_node, value_node, path, explicit=True)
        # ``<<: *defaults`` fills in what the mapping itself does not say.
        for key_node, value_node in merged:
            self._put(result, key_node, value_node, path, explicit=False)
        return result

    def _merge_sources(self, node: Node, path: str) -> list[tuple[Node, Node]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self.error(Position.of(source), path, "'<<' must merge a mapping")
                continue
            pairs.extend(source.value)
        return pairs

    def _put(
        self, result: YamlMapping, key_node: Node, value_node: Node, path: str, *, explicit: bool
    ) -> None:
        if not isinstance(key_node, ScalarNode):
            self.error(Position.of(key_node), path, "a key must be a plain value, not a collection")
            return
        key = self._scalars.construct_object(key_node)
        key_path = join_path(path, key)
        if key in result.key_positions:
            if explicit:
                first = result.key_positions[key].line
                self.error(
                    Position.of(key_node), key_path, f"duplicate key (first given at line {first})"
                )
            return
        result.key_positions[key] = Position.of(key_node)
        result.value_positions[key] = Position.of(value_node)
        result[key] = self.build(value_node, key_path)


def _describe(exc: yaml.MarkedYAMLError) -> str:
    problem, context = exc.problem or "", exc.context or ""
    if problem and context.startswith("expected"):  # "expected a single document", "but found"
        return f"{context}, {problem}"
    if problem and context:
        return f"{problem} ({context})"
    return problem or context or "not valid YAML"


def load_yaml(text: str, filename: str = "<config>") -> Any:
    """Parse one YAML document into located values; ``None`` for an empty document.

    :raises ConfigError: on a syntax error (with its line), and on every duplicate key or
        unsupported tag in the document, all reported together.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise _too_big(filename, text[:MAX_CONFIG_BYTES + 1].encode("utf-8"))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{filename}:{line}: invalid YAML: {_describe(exc)}"]) from None
    except yaml.YAMLError as exc:  # reader errors: bad bytes, control characters
        raise ConfigError([f"{filename}:1: invalid YAML: {exc}"]) from None
    if root is None:
        return None
    builder = _Builder(filename)
    value = builder.build(root, "")
    if builder.errors:
        raise ConfigError([text for _line, text in sorted(builder.errors, key=lambda e: e[0])])
    return value


#: the largest configuration read: a real one is a few kilobytes, and PyYAML holds about
#: 60 bytes of nodes per byte of text (a 29 MB file took 1.7 GB before this limit)
MAX_CONFIG_BYTES = 1024 * 1024


def _too_big(filename: str, head: bytes) -> ConfigError:
    """Name where the limit falls (line and column), as for any other error in the file."""
    cut = head[:MAX_CONFIG_BYTES]
    line = cut.count(b"\n") + 1
    column = len(cut) - (cut.rfind(b"\n") + 1) + 1
    return ConfigError([f"{filename}:{line}:{column}: the configuration goes on past "
                        f"{MAX_CONFIG_BYTES // 1024} KiB, the most marketsync reads; "
                        "is this the right file?"])


def read_yaml(path: str | Path) -> Any:
    """Read and parse a YAML file; errors name the file as the caller spelled it."""
    filename = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)  # a FIFO or /dev/zero ends here too
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _too_big(filename, raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{filename}:1: not UTF-8 text ({exc.reason})"]) from None
    return load_yaml(text, filename)
