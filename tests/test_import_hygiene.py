"""Layers point one way (front ends -> eval -> agent -> memory, strategies), held by import-linter.

The contract lives in pyproject.toml (`[tool.importlinter]`); this test runs it, so a change that
makes the core import the terminal layer, or strategies import memory, fails `make test`.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
