"""Issue 6 acceptance: the status engine with a real agent, a real portal over TLS, a real worker and beat.

``azcmagent connect`` (a real subprocess) onboards a machine against gunicorn over TLS and starts its background
service, which heartbeats every 2 s → Connected. ``azcmagent service stop`` → the sweep (every 1 s) records
Disconnected at exactly last heartbeat + 6 s, within 6 s + 2 sweeps (+ scheduling slack). ``azcmagent service
start`` → Connected at the new heartbeat. The machine's activity log holds both transitions at those times, and a
webhook receiver on 127.0.0.1 gets both, with valid signatures.

With ``REDIS_URL`` and ``DATABASE_URL`` set (CI) the portal runs on Redis (broker, cache, heartbeat buffer) and a
dedicated PostgreSQL database (``arcportal_it_<random>``, dropped at teardown); without them on the embedded broker
and a SQLite file. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from machines.webhooks import webhook_signature_valid
from tests.agent_env import agent_environment
from tests.integration.conftest import BEAT, WORKER, free_port, pid_alive, wait_until

pytestmark = pytest.mark.integration

OFFLINE_SECONDS = 6
HEARTBEAT_SECONDS = 2
SWEEP_SECONDS = 1
# Beyond "threshold + 2 sweeps": broker pickup (the filesystem transport polls once a second) and our polling.
SCHEDULING_SLACK_SECONDS = 4
RESOURCE_GROUP = "arc-servers"
MACHINE = "it-web-01"


class AgentHost:
    """One simulated host: ``python -m azcmagent.cli`` with its own AZCMAGENT_HOME."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir()
        self.service_pids: set[int] = set()
        self.env = agent_environment(
            AZCMAGENT_HOME=str(home),
            AZCMAGENT_VM_UUID=str(uuid.uuid4()).upper(),
            AZCMAGENT_SERVICE_MAX_SECONDS="180",  # a service that outlives teardown still ends on its own
            AZCMAGENT_INSTALL_CONFIG=str(home / "no-install.json"),
        )

    def run(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "azcmagent.cli", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.note_service()
        assert result.returncode == 0, f"azcmagent {args[0]} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def note_service(self) -> int | None:
        try:
            pid = int((self.home / "himds.pid").read_text())
        except (OSError, ValueError):
            return None
        self.service_pids.add(pid)
        return pid

    def log(self) -> str:
        path = self.home / "log" / "himds.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill_services(self) -> None:
        self.note_service()
        for pid in self.service_pids:  # each service runs in its own session (start_new_session)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def wait_for_listener(process: subprocess.Popen, port: int, *, timeout: float) -> None:
    def listening():
        assert process.poll() is None, f"gunicorn exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(listening, timeout=timeout, interval=0.2, message="gunicorn is not listening")


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The documented scheme (docs/status-engine.md §4), computed independently of the portal's code."""
    timestamp = headers["x-arcportal-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-arcportal-signature"])


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_real_agent_goes_offline_and_back_with_events_and_signed_webhooks(
    make_installation, database_url, receiver, redis_cleanup, tmp_path
):
    port = free_port()
    portal_url = f"https://127.0.0.1:{port}"
    overrides = {
        "ARC_HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_SECONDS),
        "ARC_OFFLINE_AFTER_SECONDS": str(OFFLINE_SECONDS),
        "ARC_STATUS_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "ARC_BEAT_LIVENESS_SECONDS": "5",
        "ARC_PUBLIC_BASE_URL": portal_url,
        "DJANGO_SUPERUSER_PASSWORD": uuid.uuid4().hex,
    }
    if os.environ.get("REDIS_URL"):
        overrides["REDIS_URL"] = os.environ["REDIS_URL"]
    if database_url:
        overrides["DATABASE_URL"] = database_url
    installation = make_installation(**overrides)
    redis_cleanup(installation)
    agent = AgentHost(tmp_path / "agent")
    try:
        installation.manage("migrate", "--no-input")
        installation.manage("bootstrap")
        principal = json.loads(installation.manage("create_service_principal", "--name", "it-onboarding"))
        driver = installation.driver()
        prepared = driver("prepare", resource_group=RESOURCE_GROUP, webhook_url=receiver.url)
        pki = installation.var_dir / "pki"
        gunicorn = installation.start(
            "gunicorn",
            [
                *(sys.executable, "-m", "gunicorn", "arcportal.wsgi:application"),
                *("--workers", "1", "--threads", "4", "--timeout", "60", "--bind", f"127.0.0.1:{port}"),
                *("--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server-key.pem")),
            ],
        )
        installation.start("worker", WORKER)
        installation.start("beat", BEAT)
        wait_for_listener(gunicorn, port, timeout=60)

        def state():
            return driver("state", machine_id=machine_id)

        # 1. The agent onboards, heartbeats once and starts its service: Connected, and heartbeats keep coming.
        out = agent.run(
            "connect",
            *("--service-principal-id", principal["appId"], "--service-principal-secret", principal["password"]),
            *("--resource-group", RESOURCE_GROUP, "--tenant-id", prepared["tenant_id"], "--location", "westeurope"),
            *("--subscription-id", prepared["subscription_id"], "--resource-name", MACHINE),
            *("--portal-url", portal_url, "--ca-file", str(pki / "ca.pem")),
        )
        assert "Successfully Onboarded Resource to Azure" in out, out
        first_service = agent.note_service()
        assert first_service is not None and pid_alive(first_service), out
        machine_id = driver("find", resource_group=RESOURCE_GROUP, name=MACHINE)["machine_id"]
        assert machine_id is not None
        connected = state()
        assert connected["status"] == "Connected", connected
        first_heartbeat = parse(connected["last_heartbeat_at"])
        wait_until(
            lambda: (s := state())["status"] == "Connected" and parse(s["last_heartbeat_at"]) > first_heartbeat,
            timeout=4 * HEARTBEAT_SECONDS + 10,
            message="the agent service sent no further heartbeat",
        )
        time.sleep(HEARTBEAT_SECONDS)  # a few service heartbeats in: still Connected
        assert state()["status"] == "Connected"

        # 2. The service stops: Disconnected at exactly last heartbeat + 6 s, noticed within 6 s + 2 sweeps.
        stop_requested_at = datetime.now(UTC)
        assert "Agent service stopped" in agent.run("service", "stop")
        stopped_at = datetime.now(UTC)
        assert not pid_alive(first_service)
        offline = wait_until(
            lambda: (s := state())["status"] == "Disconnected" and s,
            timeout=30,
            interval=0.2,
            message="the machine never went Disconnected",
        )
        noticed_at = datetime.now(UTC)
        last_heartbeat = parse(offline["last_heartbeat_at"])
        # Within two intervals before the stop was asked for (the stop command itself may take seconds on a busy box).
        assert stop_requested_at - timedelta(seconds=2 * HEARTBEAT_SECONDS) <= last_heartbeat <= stopped_at
        assert noticed_at - last_heartbeat <= timedelta(
            seconds=OFFLINE_SECONDS + 2 * SWEEP_SECONDS + SCHEDULING_SLACK_SECONDS
        ), noticed_at - last_heartbeat
        went_offline_at = last_heartbeat + timedelta(seconds=OFFLINE_SECONDS)
        assert parse(offline["last_status_change"]) == went_offline_at

        # 3. The service starts again: Connected at its first heartbeat.
        restart_requested_at = datetime.now(UTC)
        assert "Agent service started" in agent.run("service", "start")
        second_service = agent.note_service()
        assert second_service not in (None, first_service)
        back = wait_until(
            lambda: (s := state())["status"] == "Connected" and s,
            timeout=15,
            interval=0.2,
            message="the machine did not reconnect",
        )
        back_at = parse(back["last_status_change"])
        assert restart_requested_at <= back_at <= datetime.now(UTC)

        # 4. The activity log: onboarding's Connected, then exactly the two transitions, at their exact times.
        events = back["events"]
        assert [(e["from"], e["to"]) for e in events[:1]] == [("AwaitingConnection", "Connected")], events
        assert [(e["from"], e["to"], parse(e["at"]), e["reason"]) for e in events[1:]] == [
            ("Connected", "Disconnected", went_offline_at, "Status sweep"),
            ("Disconnected", "Connected", back_at, "Heartbeat"),
        ]

        # 5. The receiver got every transition, each signed with the webhook's secret.
        def deliveries():
            unique = {json.loads(body)["id"]: (headers, body) for headers, body in list(receiver.received)}
            return len(unique) >= 3 and unique

        delivered = wait_until(deliveries, timeout=30, message="webhook deliveries missing")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{installation.logs()}\n--- himds ---\n{agent.log()}") from None
    finally:
        agent.kill_services()

    changes = []
    for headers, body in delivered.values():
        assert signed_by(prepared["secret"], headers, body)
        assert webhook_signature_valid(
            secret=prepared["secret"],
            timestamp=headers["x-arcportal-timestamp"],
            body=body,
            signature=headers["x-arcportal-signature"],
        )
        assert not signed_by("not-the-secret", headers, body)
        data = json.loads(body)["data"]
        assert data["machineName"] == MACHINE and data["resourceGroup"] == RESOURCE_GROUP
        changes.append((data["previousStatus"], data["status"], parse(data["statusChangedAt"])))
    changes.sort(key=lambda change: change[2])
    assert changes == [
        ("AwaitingConnection", "Connected", parse(events[0]["at"])),
        ("Connected", "Disconnected", went_offline_at),
        ("Disconnected", "Connected", back_at),
    ]
