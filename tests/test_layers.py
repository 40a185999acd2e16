"""Imports point down: no circle among facecli's modules (imports inside functions counted), and the layers
hold (the CLI on top, the API verbs under it, nothing below reaching up); functions stay short."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")


@pytest.fixture(scope="module")
def graph():
    g = grimp.build_graph("facecli", include_external_packages=False)
    mods = {m for m in g.modules if not m.startswith(("facecli.training", "facecli.models"))}
    return {m: {d for d in g.find_modules_directly_imported_by(m) if d in mods and d != m} for m in mods}


def test_no_import_circles(graph):
    done: set[str] = set()
    circles = []

    def visit(m: str, path: list[str]) -> None:
        for d in sorted(graph[m]):
            if d in path:
                circles.append(path[path.index(d):] + [d])
            elif d not in done:
                visit(d, [*path, d])
        done.add(m)

    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    assert not circles, circles[:3]


def test_the_cli_is_on_top_and_the_verbs_under_it(graph):
    def importers(target: str) -> set[str]:
        return {m for m, deps in graph.items() if any(d == target or d.startswith(target + ".") for d in deps)}

    cli = {m for m in importers("facecli.cli") if not m.startswith("facecli.cli")}
    assert cli <= {"facecli.__main__"}, cli
    api = {m for m in importers("facecli.api") if not m.startswith("facecli.cli")}
    assert api <= {"facecli", "facecli.__main__"}, api
    low = ("facecli.runtime", "facecli.card", "facecli.face", "facecli.shipped", "facecli.options", "facecli.pipeline")
    up = ("facecli.api", "facecli.jobs", "facecli.cluster", "facecli.recognise", "facecli.classify", "facecli.resolve")
    reach = {(m, d) for m, deps in graph.items() if m.startswith(low) for d in deps if d.startswith(up)}
    assert not reach, reach


def test_no_function_is_longer_than_60_lines():
    """Small functions with one job each (issue 27's bound), in the library and the training recipes."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    long = []
    for path in sorted([*(root / "facecli").rglob("*.py"), *(root / "training").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)
