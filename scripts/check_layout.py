#!/usr/bin/env python3
"""Checks the code's layout: no import cycle, no module over the size limit, every engine module on the map.

Every ``import`` and ``from ... import`` of a project module counts, including those inside functions
(a deferred import still ties the two modules together); only ``if TYPE_CHECKING:`` blocks are left out,
since they never run. Prints each cycle found and each module over
``--max-lines`` that does not say at its top why it is that long (a docstring line starting "It stays one
module"), and exits 1 if there is any.

    .venv/bin/python scripts/check_layout.py            # conversions/ and quantweb/
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conversions", "quantweb")
LONG_MODULE_REASON = "It stays one module"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in p.parts
    }


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and _is_type_checking(n.test)]:
        block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def long_modules(modules: dict[str, Path], max_lines: int) -> list[tuple[str, int]]:
    out = []
    for name, path in modules.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > max_lines and LONG_MODULE_REASON not in doc:
            out.append((name, lines))
    return out


def unmapped_engine_modules(modules: dict[str, Path]) -> list[str]:
    """Engine modules the engine's package docstring (its map) does not name."""
    doc = ast.get_docstring(ast.parse((ROOT / "conversions" / "engine" / "__init__.py").read_text())) or ""
    return [name for name, path in modules.items()
            if name.startswith("conversions.engine.") and path.name != "__init__.py" and f"{path.stem}.py" not in doc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=420)
    args = parser.parse_args(argv)
    modules = project_modules()
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    found = cycles(graph)
    long = long_modules(modules, args.max_lines)
    unmapped = unmapped_engine_modules(modules)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(modules)} modules, {edges} imports between them: {len(found)} import cycle(s), "
          f"{len(long)} module(s) over {args.max_lines} lines without a reason")
    for component in found:
        print("cycle: " + " <-> ".join(component))
    for name, lines in long:
        print(f"long: {name} ({lines} lines)")
    for name in unmapped:
        print(f"not in the engine's map (conversions/engine/__init__.py): {name}")
    return 1 if found or long or unmapped else 0


if __name__ == "__main__":
    raise SystemExit(main())
