"""A newcomer's first hour, in a fresh clone: the steps `make run` takes before serving, then every command the docs
show, verbatim, and the files those steps leave behind.

The clone is ``git clone`` of this repository; ``make venv`` would take minutes, so the clone's ``.venv`` is a link to
this one and make is told not to rebuild it (``-o .venv/.installed``). Then ``make run`` itself (secret key, migrate,
bootstrap, collectstatic, ``manage.py serve``) on free ports (``ARC_HTTP_BIND``/``ARC_HTTPS_BIND``), with umask 022
and none of this test run's settings in the environment (no DJANGO_SECRET_KEY, DJANGO_SETTINGS_MODULE,
DATABASE_URL …): the embedded defaults a newcomer has. All its processes run on the real clock, also in a
``--clock-shift-days`` run: they agree with each other, and nothing here compares with the test process's clock.
The commands are the docs' own: every fenced block of README.md and docs/*.md is split into command lines, and
each line that runs the portal's ``manage.py`` or talks to it with curl is run in the clone, in document order,
against ``manage.py serve`` on free ports (the docs' ``127.0.0.1:8443`` becomes that port). ``<placeholders>`` are
filled with the values a newcomer reads off earlier output (subscription, tenant, the new principal's appId and
password); a placeholder the test does not know fails it, so the docs stay runnable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```(?P<info>[^\n`]*)\n(?P<body>.*?)^ *```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z-]*>")
# Environment of this test run that a newcomer's shell does not have.
FOREIGN_PREFIXES = ("DJANGO_", "ARC_", "CELERY_", "AZCMAGENT_", "PYTEST_", "TESTS_")
FOREIGN = {"DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH"}
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed"]

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")]


@dataclass(frozen=True)
class Command:
    doc: str
    block: int
    text: str


def command_lines(text: str) -> list[str]:
    """The logical lines of a shell block: ``\\`` continuations joined, blank lines dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def runs_the_portal(line: str) -> bool:
    return line.startswith((".venv/bin/python manage.py", "curl ")) or line.startswith("TOKEN=$(.venv/bin/python")


def documented_commands() -> list[list[Command]]:
    """Blocks (in document order) of the documented commands that use the portal."""
    blocks = []
    for path in DOCS:
        for number, match in enumerate(FENCE.finditer(path.read_text())):
            if match["info"].strip() not in ("", "bash", "sh", "shell"):
                continue
            runnable = [
                Command(path.name, number, line) for line in command_lines(match["body"]) if runs_the_portal(line)
            ]
            if runnable:
                blocks.append(runnable)
    return blocks


def test_the_docs_show_every_management_command_in_a_form_that_runs_after_make_run():
    """Parsing guard: the commands the issue names are found, and none uses a bare ``python`` (no Django there)."""
    texts = " ".join(command.text for block in documented_commands() for command in block)
    for name in ("issue_token --user admin", "create_service_principal", "onboarding_script", "simulate_fleet"):
        assert f".venv/bin/python manage.py {name}" in texts or f"manage.py {name}" in texts, name
    for path in DOCS:
        for line in path.read_text().splitlines():
            assert not re.search(r"(^|[`$( ])python3? manage\.py", line), f"{path.name}: {line.strip()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def newcomer_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN and not k.startswith(FOREIGN_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(args, cwd: Path, *, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=newcomer_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        umask=0o022,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone, with `make demo`'s preparation done (its own var/demo)."""
    path = tmp_path_factory.mktemp("newcomer") / "arcportal"
    run(["git", "clone", "--quiet", str(ROOT), str(path)], ROOT.parent)
    (path / ".venv").symlink_to(ROOT / ".venv")
    run([*MAKE, "demo-prepare"], path)
    return path


@pytest.fixture(scope="module")
def served(clone):
    """``make run`` (migrate, bootstrap, collectstatic, then web http + https, Celery worker and beat) on free ports;
    yields the https port. Its process group is stopped at the end."""
    http, https = free_port(), free_port()
    env = newcomer_environment()
    env.update(ARC_HTTP_BIND=f"127.0.0.1:{http}", ARC_HTTPS_BIND=f"127.0.0.1:{https}", ARC_WEB_WORKERS="1")
    log = clone.parent / "make-run.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [*MAKE, "run"], cwd=clone, env=env, stdout=output, stderr=output, umask=0o022, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, f"make run exited:\n{log.read_text()[-3000:]}"
            try:
                socket.create_connection(("127.0.0.1", https), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the https port never opened"
                time.sleep(0.5)
        yield https
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left (gunicorn, Celery)
        process.wait()


def test_every_documented_command_runs_verbatim_in_a_fresh_clone_after_make_run(clone, served):
    lookup = (
        "from identity.selectors import tenant_get; from machines.selectors import subscription_list; "
        "print('ids', tenant_get().tenant_id, subscription_list()[0].subscription_id)"
    )
    output = run([".venv/bin/python", "manage.py", "shell", "-c", lookup], clone).stdout
    facts = re.search(r"^ids (\S+) (\S+)$", output, re.MULTILINE).groups()
    values = {"<tenant-id>": facts[0], "<subscription-id>": facts[1]}
    ran: list[str] = []
    for block in documented_commands():
        script = ["set -euo pipefail"]
        for command in block:
            text = command.text.replace("127.0.0.1:8443", f"127.0.0.1:{served}")
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            assert not PLACEHOLDER.findall(text), f"{command.doc}: unknown placeholder in {command.text}"
            script.append(text)
        result = run(["bash", "-c", "\n".join(script)], clone, timeout=240)
        output = result.stdout + result.stderr
        assert "Traceback" not in output and "ImproperlyConfigured" not in output, output
        source = " ".join(command.text for command in block)
        if "create_service_principal" in source:
            principal = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
            values.update({"<appId>": principal["appId"], "<password>": principal["password"]})
            assert principal["tenant"] == values["<tenant-id>"] and facts[0] in result.stdout
        if "issue_token" in source:
            assert json.loads(result.stdout)["value"] is not None  # the ARM list the token was good for
        if "grant_type=client_credentials" in source:
            assert json.loads(result.stdout)["token_type"] == "Bearer"
        if "simulate_fleet" in source:
            assert "machines: 10 requested, 10 onboarded" in result.stdout, output
        ran.append(source)
    assert (clone / "OnboardingScript.sh").read_text().startswith("#!")
    for name in (
        "create_service_principal",
        "issue_token",
        "client_credentials",
        "onboarding_script",
        "simulate_fleet",
    ):
        assert any(name in source for source in ran), name


def test_var_is_the_owners_only_after_make_run_and_make_demo(clone, served):
    """`make run` / `make demo-prepare` under umask 022 (and the portal serving): var/ and var/demo/ are 0700,
    their database, key and secret files 0600, the PKI, broker and cache directories 0700."""
    var = clone / "var"
    for base in (var, var / "demo"):
        assert stat.S_IMODE(base.stat().st_mode) == 0o700, base
        for name in ("pki", "broker", "broker/queue", "broker/processed", "broker/control", "celery-results", "cache"):
            assert stat.S_IMODE((base / name).stat().st_mode) == 0o700, base / name
        for name in ("secret_key", "arcportal.sqlite3", "pki/ca-key.pem", "pki/server-key.pem"):
            assert stat.S_IMODE((base / name).stat().st_mode) == 0o600, base / name
    private = re.compile(r"(secret|key\.pem$|\.sqlite3(-wal|-shm|-journal)?$)")
    checked = []
    for directory, _, files in os.walk(var):
        for name in files:
            if private.search(name):
                path = Path(directory) / name
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                checked.append(path.relative_to(var))
    assert {Path("secret_key"), Path("demo/secret_key"), Path("pki/ca-key.pem")} <= set(checked), checked
