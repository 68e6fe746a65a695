"""Every name a bench or the simulator imports exists (issue 11 moved code between apps; a bench imports lazily,
inside its functions, so a stale name shows only when someone runs the bench — bench/serving_tiers.py did)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted([*(ROOT / "bench").rglob("*.py"), *(ROOT / "simulator").rglob("*.py")])


def imported_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_name_a_bench_imports_exists(path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT / "bench"), *sys.path])  # benches import their siblings by name
    missing = []
    for module_name, name in imported_names(path):
        module = importlib.import_module(module_name)
        if name != "*" and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ModuleNotFoundError:
                missing.append(f"from {module_name} import {name}")
    assert not missing, missing
