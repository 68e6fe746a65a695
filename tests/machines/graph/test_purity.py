"""The parser and compiler are pure (no Django), so they can be tested and reused without a database; only
``executor.py`` talks to Django. Checked twice: no module imports Django, and importing them all with Django made
unimportable works."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_architecture import _imports

ROOT = Path(__file__).resolve().parents[3]
GRAPH = ROOT / "machines" / "graph"
PURE = sorted(p for p in GRAPH.glob("*.py") if p.name not in ("executor.py", "__init__.py"))


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_graph_module_imports_no_django(path):
    imported = _imports(path)
    offenders = sorted(n for n in imported if n == "django" or n.startswith(("django.", "rest_framework")))
    assert not offenders, f"{path.name} must stay pure but imports {offenders}"


def test_the_engine_imports_with_django_unavailable():
    modules = ", ".join(f"machines.graph.{p.stem}" for p in PURE)
    code = (
        "import sys, warnings\nwarnings.simplefilter('ignore')\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'django' or name.startswith(('django.', 'rest_framework')):\n"
        "            raise ImportError('Django is not available here: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {modules}\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
