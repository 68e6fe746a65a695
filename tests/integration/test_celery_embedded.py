"""Issue 2: Celery beat and a worker run on the embedded broker (kombu filesystem transport) with SQLite, and
``manage.py serve`` (what ``make run`` runs) starts web, worker and beat and stops them all on Ctrl+C."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import urllib.request
from datetime import datetime, timedelta

import pytest
from django.core.cache.backends.filebased import FileBasedCache

from arcportal.tasks import BEAT_LIVENESS_KEY
from tests.integration.conftest import BEAT, WORKER, free_port, pid_alive, wait_until

pytestmark = pytest.mark.integration

FAST = {
    "ARC_BEAT_LIVENESS_SECONDS": "1",
    "ARC_STATUS_SWEEP_SECONDS": "1",
    "ARC_HEARTBEAT_INTERVAL_SECONDS": "2",
    "ARC_OFFLINE_AFTER_SECONDS": "6",
}


def _beat_stamp(installation) -> str | None:
    return FileBasedCache(str(installation.var_dir / "cache"), {}).get(BEAT_LIVENESS_KEY)


def test_worker_and_beat_run_on_the_embedded_broker_and_sweep_the_sqlite_database(make_installation):
    installation = make_installation(**FAST)
    assert "DATABASE_URL" not in installation.env and "REDIS_URL" not in installation.env
    installation.manage("migrate", "--no-input")
    assert (installation.var_dir / "arcportal.sqlite3").exists()
    driver = installation.driver()
    seeded = driver("seed", name="stale", heartbeat_age=60, status="Connected")
    last_heartbeat = datetime.fromisoformat(seeded["last_heartbeat_at"])

    installation.start("worker", WORKER)
    installation.start("beat", BEAT)

    try:
        stamp = wait_until(lambda: _beat_stamp(installation), timeout=40, message="no beat-liveness timestamp")
        state = wait_until(
            lambda: (s := driver("state", machine_id=seeded["machine_id"]))["status"] == "Disconnected" and s,
            timeout=40,
            message="the stale machine was not swept to Disconnected",
        )
    except AssertionError:
        raise AssertionError(installation.logs()) from None

    assert datetime.fromisoformat(stamp)
    assert (installation.var_dir / "broker" / "queue").is_dir()
    assert state["events"] == [
        {
            "from": "Connected",
            "to": "Disconnected",
            "at": (last_heartbeat + timedelta(seconds=6)).isoformat(),
            "reason": "Status sweep",
        }
    ]
    assert state["last_status_change"] == (last_heartbeat + timedelta(seconds=6)).isoformat()
    assert "machines.tasks.machine_status_sweep_task" in installation.log("worker")


def test_serve_starts_web_worker_and_beat_and_stops_them_all_on_ctrl_c(make_installation):
    installation = make_installation(ARC_BEAT_LIVENESS_SECONDS="1", ARC_WEB_WORKERS="1")
    installation.manage("migrate", "--no-input")
    installation.manage("bootstrap")
    installation.manage("collectstatic", "--no-input", "--verbosity", "0")
    port, tls_port = free_port(), free_port()

    serve = installation.start(
        "serve",
        [sys.executable, "manage.py", "serve", "--http", f"127.0.0.1:{port}", "--https", f"127.0.0.1:{tls_port}"],
    )

    def started() -> dict[str, int]:
        pids = {}
        for line in installation.log("serve").splitlines():
            if line.startswith("started ") and "(pid " in line:
                name = line.split()[1]
                pids[name] = int(line.rsplit("(pid ", 1)[1].rstrip(")"))
        return pids if {"web-http", "web-https", "worker", "beat"} <= pids.keys() else {}

    def login_page() -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
                return response.read() if response.status == 200 else None
        except OSError:
            return None

    def healthz_over_tls() -> bytes | None:
        # The agent plane's listener, through the TLS context hook of arcportal/gunicorn_conf.py.
        context = ssl.create_default_context(cafile=str(installation.var_dir / "pki" / "ca.pem"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/healthz", timeout=5, context=context) as answer:
                return answer.read() if answer.status == 200 else None
        except OSError:
            return None

    try:
        children = wait_until(started, timeout=30, message="serve did not start its processes")
        page = wait_until(login_page, timeout=40, message="the login page never answered 200")
        for _ in range(2):  # the second connection reuses the worker's context
            wait_until(healthz_over_tls, timeout=40, message="the https listener never answered /healthz")
        wait_until(lambda: _beat_stamp(installation), timeout=40, message="worker and beat did not run a task")
    except AssertionError:
        raise AssertionError(installation.logs()) from None

    assert b"<form" in page
    for name, pid in children.items():
        assert pid_alive(pid), f"{name} is not running"

    os.kill(serve.pid, signal.SIGINT)
    assert serve.wait(timeout=30) == 0, installation.log("serve")
    wait_until(
        lambda: not any(pid_alive(pid) for pid in children.values()),
        timeout=15,
        message=f"children still running after Ctrl+C: {children}",
    )
    assert "all processes stopped" in installation.log("serve")
