"""No module of ``src/ecgnet`` imports another that imports it back: the import graph, built with ``ast``
from every import statement (function-level ones included, since they run too), has no cycle.

A package's ``__init__`` counts as a module: ``import ecgnet.a.b`` runs ``ecgnet/a/__init__.py`` first, so
an edge to ``ecgnet.a.b`` is also an edge to ``ecgnet.a``. ``ecgnet`` itself (the version) is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ecgnet"


def module_name(path: Path) -> str:
    parts = ("ecgnet", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the ecgnet modules it imports} (each target's parent packages included)."""
    modules = {module_name(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
        edges = set()
        for t in targets:
            parts = t.split(".")
            edges.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        graph[name] = {t for t in edges if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    graph = import_graph()
    assert "ecgnet.cli" in graph and "ecgnet.models.registry" in graph["ecgnet.models"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


@pytest.mark.parametrize("low, high", [("ecgnet.models", "ecgnet.runs"), ("ecgnet.export", "ecgnet.inference"),
                                       ("ecgnet.evaluation.compare_report", "ecgnet.evaluation.compare")])
def test_layers(low, high):
    """Lower layers never import the ones built on them."""
    graph = import_graph()
    bad = sorted(f"{m} → {t}" for m, ts in graph.items() if m == low or m.startswith(low + ".")
                 for t in ts if t == high or t.startswith(high + "."))
    assert not bad, "\n".join(bad)
