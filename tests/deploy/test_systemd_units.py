"""``deploy/systemd``: the units pass ``systemd-analyze verify`` (with the install paths moved to this checkout, so
their commands exist), run what ``arcportal/serving.py`` and the tests run, and carry their hardening."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arcportal.serving import granian_command
from tests.integration.conftest import BEAT, WORKER

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ["arcportal-web@.service", "arcportal-worker.service", "arcportal-beat.service"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "User": "arcportal",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # keep the keys' case
    parser.read_string((UNITS / name).read_text())
    return parser


def exec_start(name: str, port: int = 8001) -> list[str]:
    return shlex.split(unit(name)["Service"]["ExecStart"].replace("%i", str(port)))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_every_unit(tmp_path):
    """The units as shipped, with /opt/arcportal and /etc/arcportal moved to this checkout and a temp directory."""
    venv_python = Path(sys.executable)
    checkout = venv_python.parents[2] if venv_python.parent.parent.name == ".venv" else ROOT
    (tmp_path / "arcportal.env").write_text((ROOT / "deploy" / "arcportal.env.example").read_text())
    names = []
    for path in UNITS.iterdir():
        text = path.read_text().replace("/opt/arcportal/.venv/bin/python", str(venv_python))
        text = text.replace("/opt/arcportal", str(checkout)).replace("/etc/arcportal", str(tmp_path))
        (tmp_path / path.name).write_text(text)
        names.append(path.name.replace("@.", "@8001."))
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Any complaint about our units (an unknown or misspelt setting is only a warning) fails the test.
    ours = [line for line in result.stderr.splitlines() if "arcportal" in line]
    assert result.returncode == 0 and not ours, result.stderr


def test_the_web_unit_runs_the_production_command_of_arcportal_serving():
    command = exec_start("arcportal-web@.service")
    assert command[0] == "/opt/arcportal/.venv/bin/python"
    expected = granian_command(bind="127.0.0.1:8001", workers=2, interface="wsgi", threads=4, python=command[0])
    assert command == expected


def test_worker_and_beat_run_what_the_integration_tests_run():
    worker, beat = exec_start("arcportal-worker.service"), exec_start("arcportal-beat.service")
    assert worker[0] == beat[0] == "/opt/arcportal/.venv/bin/python"
    assert worker[1:] == WORKER[1:] and beat[1:] == BEAT[1:]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_hardened_and_reads_the_environment_file(name):
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, (name, key)
    assert service["EnvironmentFile"] == "/etc/arcportal/arcportal.env"
    assert service["StateDirectory"] == "arcportal" and service["StateDirectoryMode"] == "0700"
    assert service["Restart"] == "on-failure"
    assert unit(name)["Install"]["WantedBy"] == "arcportal.target"


def test_the_modules_the_units_start_are_installed():
    for name in SERVICES:
        module = exec_start(name)[2]
        found = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, timeout=60, check=False)
        assert found.returncode == 0, (module, found.stderr)
