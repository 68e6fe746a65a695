"""Fixtures for agent tests: an onboarding service principal, a resource group, the agent as a real subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.agent_env import HOST_CA_VARIABLES, SYSTEM_CA_BUNDLE

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Agent:
    """``azcmagent`` run as ``python -m azcmagent.cli`` with its own AZCMAGENT_HOME (one simulated host)."""

    home: Path
    vm_uuid: str
    portal_url: str
    ca_file: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZCMAGENT_", "DJANGO_"))}
        # A user's host: every CA-bundle variable at the system bundle; the agent trusts only AZCMAGENT_CA_FILE.
        env.update(dict.fromkeys(HOST_CA_VARIABLES, SYSTEM_CA_BUNDLE))
        env.update(
            AZCMAGENT_HOME=str(self.home),
            AZCMAGENT_VM_UUID=self.vm_uuid,
            AZCMAGENT_PORTAL_URL=self.portal_url,
            AZCMAGENT_CA_FILE=self.ca_file,
            AZCMAGENT_SERVICE_MAX_SECONDS="60",
            AZCMAGENT_INSTALL_CONFIG=str(self.home / "no-install.json"),
        )
        env.update(self.extra_env)
        return env

    def run(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "azcmagent.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
            **kwargs,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "azcmagent.cli", *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.home,
        )

    def service_pid(self) -> int | None:
        try:
            return int((self.home / "himds.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop_service(self) -> None:
        pid = self.service_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def db_lock(tls_live_server):
    """The lock the live server holds around each request on shared in-memory SQLite (tests/tls.py); test code that
    queries the database while agents talk to the server holds it too."""
    return tls_live_server.lock


@pytest.fixture
def make_agent(tmp_path, tls_live_server, db_lock):
    """``make_agent(vm_uuid=None, **env)`` → an Agent on a fresh simulated host. Services are stopped at teardown."""
    agents: list[Agent] = []

    def make(vm_uuid: str | None = None, **extra_env: str) -> Agent:
        home = tmp_path / f"host-{len(agents)}"
        home.mkdir()
        agent = Agent(
            home=home,
            vm_uuid=vm_uuid or str(uuid.uuid4()).upper(),
            portal_url=tls_live_server.url,
            ca_file=tls_live_server.ca_file,
            extra_env=dict(extra_env),
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop_service()


@pytest.fixture
def resource_group(subscription):
    from machines.services import resource_group_create

    return resource_group_create(subscription=subscription, name="arc-servers", location="westeurope")


@pytest.fixture
def make_service_principal(subscription):
    """``make_service_principal(**kw)`` → (ServicePrincipal, secret) with the onboarding role on the subscription."""
    from identity.models import Role
    from identity.service_principals import service_principal_create

    def make(**kwargs):
        options = {
            "display_name": "Arc server onboarding account",
            "role": Role.ONBOARDING,
            "scope": f"/subscriptions/{subscription.subscription_id}",
        }
        options.update(kwargs)
        created = service_principal_create(**options)
        return created.service_principal, created.secret

    return make


def connect_args(subscription, tenant, *, resource_group="arc-servers", name="web-01", extra=()):
    return [
        "connect",
        "--resource-group",
        resource_group,
        "--tenant-id",
        str(tenant.tenant_id),
        "--location",
        "westeurope",
        "--subscription-id",
        str(subscription.subscription_id),
        "--cloud",
        "AzureCloud",
        "--resource-name",
        name,
        *extra,
    ]


def stop_agent_service(home: Path) -> None:
    """Stop the agent service an installer started under ``home`` (its ``himds.pid``): TERM, then KILL after 5 s."""
    try:
        pid = int((home / "himds.pid").read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


class OutputReader:
    """Reads a subprocess's output on a thread so a test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen) -> None:
        import queue
        import threading

        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 30):
        import queue
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"{pattern!r} not seen in the agent's output:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 30) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=5)
        self._thread.join(timeout=5)
        while not self._queue.empty():
            line = self._queue.get()
            if line:
                self.lines.append(line)
        return code

    @property
    def text(self) -> str:
        return "".join(self.lines)


SIGN_IN = (
    r"To sign in, use a web browser to open the page (?P<url>https://\S+/devicelogin) and enter the code "
    r"(?P<code>[A-Z0-9]{4}-[A-Z0-9]{4}) to authenticate\."
)


# --- the agent service against a fake portal (no Django, no database) -----------------------------------------


@pytest.fixture
def fake_portal(tmp_path):
    from tests.agent.fake_portal import FakePortal

    directory = tmp_path / "fake-portal"
    directory.mkdir()
    portal = FakePortal(directory).start()
    yield portal
    portal.stop()


@pytest.fixture
def make_host(tmp_path, fake_portal):
    """``make_host(**kw)`` → an onboarded Host on the fake portal; its agent service is stopped at teardown."""
    from tests.agent.hosts import make_host as build

    hosts = []

    def make(**kwargs):
        host = build(tmp_path, fake_portal, **kwargs)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.stop()
