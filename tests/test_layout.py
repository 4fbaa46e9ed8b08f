"""The shape of the code base, checked: no import cycles, and imports point one way.

``cli``/``web`` → ``runtime`` → ``domain`` → ``store``; ``config`` and ``documents`` sit beside
them. Plugins see only the public face (``core``, ``hookspecs``, ``types``, ``errors``,
``clock``) and the governed HTTP transport; a simulator never imports the client it checks.
Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
dependency hidden from the interpreter is still a dependency for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: part -> the parts of core it may import (besides itself and the public face).
ALLOWED = {
    "base": set(),
    "store": set(),
    "config": set(),
    "domain": {"store"},
    "documents": {"domain", "store", "config"},
    "runtime": {"domain", "store", "config"},
    "web": {"runtime", "domain", "store", "config"},
    "cli": {"runtime", "domain", "store", "config", "documents", "web"},
}
PARTS = set(ALLOWED) - {"base"}
PUBLIC_FACE = {"marketsync.core", "marketsync.core.hookspecs", "marketsync.core.types",
               "marketsync.core.errors", "marketsync.core.clock"}
#: What a channel plugin may import from the core.
PLUGIN_MAY_IMPORT = PUBLIC_FACE | {"marketsync.core.runtime.http"}
#: Modules the domain rules never need: they run inside a unit of work, not an event loop.
DOMAIN_FORBIDS = ("trio", "httpx", "starlette", "hypercorn")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["marketsync", *parts])


def modules() -> dict[str, Path]:
    found = {}
    for folder in ("core", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    found["marketsync.daemon"] = ROOT / "daemon.py"
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``name`` imports: absolute or relative, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in known else target)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name, path, modules()) for name, path in modules().items()}


def part_of(name: str) -> str | None:
    """The core part a module belongs to; None outside core."""
    if name in PUBLIC_FACE:
        return "base"
    pieces = name.split(".")
    if pieces[:2] != ["marketsync", "core"]:
        return None
    return pieces[2] if len(pieces) > 2 and pieces[2] in PARTS else "base"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_core_or_plugins():
    """The simulator is left out: its handlers name the ``Catalog`` type they are given
    and the catalog lists its handlers, one unit whose independence from the client is
    checked below."""
    graph = {name: targets for name, targets in GRAPH.items() if ".sandbox" not in name}
    found = cycles(graph)
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def wrong_way() -> list[str]:
    problems = []
    for name, targets in sorted(GRAPH.items()):
        part = part_of(name)
        for target in sorted(targets):
            if not target.startswith("marketsync."):
                if part == "domain" and target.split(".")[0] in DOMAIN_FORBIDS:
                    problems.append(f"{name} imports {target} (the domain has no event loop or HTTP)")
                continue
            if part is not None:
                if target.startswith("marketsync.plugins") and name != "marketsync.core.cli.demo":
                    problems.append(f"{name} imports the plugin {target}")
                target_part = part_of(target)
                if target_part is None or target_part in ("base", part):
                    continue
                if target_part not in ALLOWED[part]:
                    problems.append(f"{name} ({part}) imports {target} ({target_part})")
            elif name.startswith("marketsync.plugins."):
                plugin = ".".join(name.split(".")[:3])
                if target.startswith(plugin):
                    in_sandbox = ".sandbox" in name
                    if in_sandbox and ".sandbox" not in target and target != plugin:
                        problems.append(f"{name} (a simulator) imports the client {target}")
                    continue
                if target.startswith("marketsync.core") and target not in PLUGIN_MAY_IMPORT:
                    problems.append(f"{name} imports {target}, which is not the plugin contract")
                if target.startswith("marketsync.plugins"):
                    problems.append(f"{name} imports another plugin, {target}")
    return problems


def test_imports_point_one_way():
    assert wrong_way() == []


@pytest.mark.parametrize("rule", ["cycle", "direction"])
def test_the_checks_can_fail(rule):
    """Each check reports a planted violation, so a green run means something."""
    global GRAPH
    saved = GRAPH
    try:
        GRAPH = {k: set(v) for k, v in saved.items()}
        if rule == "cycle":
            GRAPH["marketsync.core.store.models"].add("marketsync.core.store.cursors")
            assert cycles(GRAPH)
        else:
            GRAPH["marketsync.core.domain.orders"].add("marketsync.core.runtime.jobs")
            GRAPH["marketsync.plugins.amazon.orders"].add("marketsync.core.store.models")
            GRAPH["marketsync.core.domain.inventory"].add("trio")
            problems = "\n".join(wrong_way())
            assert "core.domain.orders (domain) imports marketsync.core.runtime.jobs" in problems
            assert "plugins.amazon.orders imports marketsync.core.store.models" in problems
            assert "inventory imports trio" in problems
    finally:
        GRAPH = saved
