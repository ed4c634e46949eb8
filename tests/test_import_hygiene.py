"""Layers point one way (front ends -> eval -> agent -> memory, strategies), held by import-linter.

The contract lives in pyproject.toml (`[tool.importlinter]`); this test runs it, so a change that
makes the core import the terminal layer, or strategies import memory, fails `make test`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_layers_hold(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    output = capsys.readouterr().out
    assert code == 0, output
    assert "1 kept, 0 broken" in output


def test_a_broken_layer_is_reported(tmp_path, monkeypatch, capsys):
    """The contract can fail: memory importing the agent breaks it."""
    for package in ("agent", "memory"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "memory" / "bad.py").write_text("import agent\n")
    config = tmp_path / "layers.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["agent", "memory"]\n'
        '[[tool.importlinter.contracts]]\nname = "layers"\ntype = "layers"\n'
        'layers = ["agent", "memory"]\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("agent", "memory"):  # the real packages are restored after the test
        monkeypatch.delitem(sys.modules, name, raising=False)
    code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    assert code != 0
    assert "BROKEN" in capsys.readouterr().out


PACKAGES = ("agent", "memory", "strategies", "tui", "eval")


def import_cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Return every group of modules that import each other (strongly connected, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = {stack.pop()}
            while module not in group:
                group.add(stack.pop())
            if len(group) > 1:
                cycles.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_back():
    """No import circles, type-checking imports included: each module can be read (and
    changed) knowing only what it imports."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    assert import_cycles(graph) == []


def test_a_circle_is_found():
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert import_cycles(graph) == [{"a.x", "a.y"}]
