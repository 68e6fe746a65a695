"""The agent package stays small and standalone: no file over 400 lines, no Django, no portal package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.astutil import parse

AGENT = Path(__file__).resolve().parents[2] / "agent" / "azcmagent"
PORTAL_PACKAGES = (
    "django",
    "rest_framework",
    "arcportal",
    "machines",
    "onboarding",
    "identity",
    "agentplane",
    "simulator",
)
SOURCES = sorted(p for p in AGENT.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(parse(path)):  # imports inside functions count too (tests.astutil: see its docstring)
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(AGENT)))
def test_no_agent_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(AGENT)))
def test_the_agent_imports_no_django_and_no_portal_package(path):
    offenders = sorted(n for n in _imported(path) if n.split(".")[0] in PORTAL_PACKAGES)
    assert not offenders, f"{path.relative_to(AGENT)} imports {offenders}"


def test_the_command_modules_exist_and_cli_dispatches_to_them():
    from azcmagent import cli
    from azcmagent.commands import check, config, connect, extension, logs, service, show

    dispatch = cli.COMMANDS
    assert dispatch == {
        "connect": connect.cmd_connect,
        "disconnect": connect.cmd_disconnect,
        "show": show.cmd_show,
        "check": check.cmd_check,
        "config": config.cmd_config,
        "logs": logs.cmd_logs,
        "extension": extension.cmd_extension,
        "service": service.cmd_service,
    }
