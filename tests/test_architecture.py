"""Dependencies point one way, and no module depends on itself through others.

Every module of the five packages is parsed with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` count too: they are dependencies all the same, only later or for the type
checker). Two rules, as ARCHITECTURE.md states them:

* layers: ``web → api → kb → corpus → nlp``. A module may import its own package and the
  packages below it, never one above;
* no import cycle between modules, whether at import time or inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Lowest first: each package may import itself and the ones before it.
LAYERS = ("nlp", "corpus", "kb", "api", "web")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts and path.parent.name == "versions":
                continue  # Alembic revisions: run by Alembic, importing nothing of ours but kb
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a module, else its closest package), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported project module, line) for every import statement anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}") or _resolve(base)
                if target:
                    yield target, node.lineno


GRAPH: dict[str, dict[str, int]] = {
    module: {target: line for target, line in _imports(module, path) if target != module}
    for module, path in MODULES.items()
}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_the_packages_are_all_found() -> None:
    for package in LAYERS:
        assert package in MODULES, package
    assert "kb.services.ingest" in MODULES and "web.app" in MODULES


def test_no_import_points_up_the_layers() -> None:
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets.items()
        if _layer(target) > _layer(module)
    ]
    assert wrong == [], "imports against web → api → kb → corpus → nlp:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph.get(target, {}))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    described = [
        " ↔ ".join(c)
        + "\n    "
        + "; ".join(f"{m} → {t} (line {GRAPH[m][t]})" for m in c for t in GRAPH[m] if t in c)
        for c in cycles
    ]
    assert cycles == [], "import cycles:\n" + "\n".join(described)


def test_the_checker_sees_cycles_and_local_imports() -> None:
    """The checker itself: a cycle through an import inside a function is found."""
    assert _cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [
        ["a", "b", "c"]
    ]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []
    local = GRAPH["kb.services.jobs"]  # imports kb.services.ingest inside a function
    assert "kb.services.ingest" in local
