"""The architecture holds (issue 17): every core module sits in a declared layer, no
module outside core/cli imports the CLI, there are no import cycles (function-level
imports included), and the GUI uses no private core names.

import-linter (scripts/test.sh) checks the layer order itself; these tests check what
its contracts cannot say: that a new package cannot escape the layers, and cycles.
"""

from __future__ import annotations

import ast
import functools
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layer_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split(":")}


def _modules(package: str) -> dict[str, Path]:
    """Dotted name -> file, for every module of ``package`` (a top-level folder)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


@functools.cache
def _project_imports() -> dict[str, set[str]]:
    """The import graph of core/ and xfr_desktop/, built once per session."""
    return _imports({**_modules("core"), **_modules("xfr_desktop")})


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (function-level
    imports included; imports under ``if TYPE_CHECKING:`` are not run, so left out)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        typing_only = {
            id(node)
            for branch in ast.walk(tree)
            if isinstance(branch, ast.If)
            and "TYPE_CHECKING" in ast.unparse(branch.test)
            for node in ast.walk(branch)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[
                        : len(package.split(".")) - node.level + 1
                    ]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def _cycles(graph: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return groups


def test_every_core_package_sits_in_a_layer():
    layered = _layer_modules()
    modules = _modules("core")
    # a package whose modules the layers name one by one (core.case) may only hold
    # a docstring: code there would sit in no layer
    split = {name.rpartition(".")[0] for name in layered if "." in name[5:]}
    code_in_split = [
        name
        for name in split
        if any(
            not isinstance(node, ast.Expr)
            for node in ast.parse(modules[name].read_text(encoding="utf-8")).body
        )
    ]
    assert not code_in_split, f"packages split across layers hold code: {code_in_split}"
    unplaced = [
        name
        for name in modules
        if name != "core"
        and name not in split
        and not any(name == top or name.startswith(top + ".") for top in layered)
    ]
    assert not unplaced, f"add these to a layer in pyproject.toml: {unplaced}"


def test_nothing_outside_the_cli_package_imports_it():
    graph = _project_imports()
    outside = sorted(
        name
        for name, targets in graph.items()
        if not (name == "core.cli" or name.startswith("core.cli."))
        and any(t == "core.cli" or t.startswith("core.cli.") for t in targets)
    )
    assert not outside, f"only core/cli may import core.cli: {outside}"


def test_no_import_cycles_even_through_function_level_imports():
    graph = _project_imports()
    assert _cycles(graph, sorted(graph)) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph, ["a", "b", "c", "d"]) == [["a", "b", "c"]]


def test_the_gui_uses_no_private_core_names():
    private = []
    for name, path in _modules("xfr_desktop").items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "core"
            ):
                private += [
                    f"{name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.endswith("__")
                ]
                if any(part.startswith("_") for part in node.module.split(".")):
                    private.append(f"{name}: {node.module}")
    assert not private, private
