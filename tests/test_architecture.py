"""Cheap guardrails that keep the layering from drifting (STYLE.md §10)."""

import ast
from pathlib import Path

import pytest

from tests.astutil import parse

ROOT = Path(__file__).resolve().parents[1]

# Pure rule modules: no Django, no database; tested directly.
PURE_MODULES = [
    "machines/status.py",
    "machines/validation.py",
    "machines/regions.py",
    "machines/timeline.py",
    "machines/keyproof.py",
    "machines/egress.py",
    "machines/csv_export.py",
    "arcportal/arm/ids.py",
    "onboarding/codes.py",
    "onboarding/quoting.py",
    "arcportal/textguard.py",
]
# .save()/.delete() on anything, and manager/queryset writes (Model.objects.create(), .update(), …).
INSTANCE_WRITES = {"save", "delete"}
MANAGER_WRITES = {"create", "bulk_create", "bulk_update", "update", "get_or_create", "update_or_create"}


def _imports(path: Path) -> set[str]:
    tree = parse(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", [m for m in PURE_MODULES if (ROOT / m).exists()])
def test_pure_modules_import_no_django(module):
    imported = _imports(ROOT / module)
    offenders = sorted(name for name in imported if name == "django" or name.startswith(("django.", "rest_framework")))
    assert not offenders, f"{module} must stay pure but imports {offenders}"


def test_agent_package_is_importable_without_django():
    for path in (ROOT / "agent" / "azcmagent").rglob("*.py"):
        offenders = sorted(n for n in _imports(path) if n == "django" or n.startswith("django."))
        assert not offenders, f"{path.relative_to(ROOT)} imports {offenders}"


def _view_modules() -> list[Path]:
    candidates = []
    for app in ("machines", "onboarding"):
        candidates += list((ROOT / app).glob("views*.py"))
        candidates += list((ROOT / app / "api").glob("*.py"))
    return [p for p in candidates if p.name != "__init__.py"]


@pytest.mark.parametrize("path", _view_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_views_do_not_write_models_directly(path):
    """Views and APIs parse, call one service or selector, render: writes belong in services."""
    tree = parse(path)
    offenders = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = ast.unparse(node.func.value)
        method = node.func.attr
        instance_write = method in INSTANCE_WRITES and not target.endswith(("cache", "session", "super()"))
        manager_write = method in MANAGER_WRITES and (".objects" in target or target.endswith(("_set", "_set.all()")))
        if instance_write or manager_write:
            offenders.append(f"line {node.lineno}: {ast.unparse(node.func)}")
    assert not offenders, f"{path.relative_to(ROOT)} writes models directly: {offenders}"


def test_agent_and_portal_accept_the_same_regions():
    """The agent carries its own copy (it installs without the portal's code); the two lists must not drift."""
    from azcmagent import regions as agent_regions

    from machines import regions as portal_regions

    assert agent_regions.REGIONS == portal_regions.REGIONS
    assert agent_regions.normalize_location(" West Europe ") == portal_regions.normalize_location(" West Europe ")
