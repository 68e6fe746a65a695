"""Helpers for integration tests: a throw-away installation (its own var dir, database, broker, queue) whose
real processes are started with ``sys.executable`` and always killed at teardown."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

CELERY = [sys.executable, "-m", "celery", "-A", "arcportal"]
WORKER = [*CELERY, "worker", "--loglevel", "INFO", "--concurrency", "2", "--without-mingle", "--without-gossip"]
BEAT = [*CELERY, "beat", "--loglevel", "INFO"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable, *, timeout: float, interval: float = 0.25, message: str = ""):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {message}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Driver:
    """``tests/integration/driver.py`` running against the installation's database."""

    def __init__(self, installation: Installation):
        self.process = installation.start("driver", [sys.executable, "-m", "tests.integration.driver"], stdin=True)
        assert self._read(timeout=60).get("ready"), "driver did not start"

    def _read(self, *, timeout: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("driver did not answer in time")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("driver exited")
        return json.loads(line)

    def __call__(self, op: str, **kwargs) -> dict:
        self.process.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.process.stdin.flush()
        answer = self._read(timeout=30)
        assert "error" not in answer, answer["error"]
        return answer


class Installation:
    def __init__(self, var_dir: Path, env: dict[str, str]):
        self.var_dir = var_dir
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def manage(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str, argv: list[str], *, stdin: bool = False) -> subprocess.Popen:
        log = open(self.var_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else log,
            stderr=log,
            text=True,
            start_new_session=True,  # its own process group: teardown kills it and its children by id
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)[-4000:]}" for name in self.processes)

    def driver(self) -> Driver:
        return Driver(self)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # anything left in the group (prefork, gunicorn workers)
            if process.poll() is None:
                process.wait(timeout=5)


def installation_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="arcportal.settings",
        DJANGO_SECRET_KEY="x",
        ARC_VAR_DIR=str(var_dir),
        ARC_CELERY_QUEUE=f"arcportal-it-{uuid.uuid4().hex[:8]}",
        ARC_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",  # the tests' webhook receiver (machines/egress.py)
        PYTHONUNBUFFERED="1",
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.update(overrides)
    return env


@pytest.fixture
def make_installation(tmp_path):
    created: list[Installation] = []

    def make(**overrides: str) -> Installation:
        var_dir = tmp_path / f"var{len(created)}"
        var_dir.mkdir()
        installation = Installation(var_dir, installation_env(var_dir, **overrides))
        created.append(installation)
        return installation

    yield make
    for installation in created:
        installation.stop_all()


@pytest.fixture
def database_url():
    """A PostgreSQL database of its own on the server of ``DATABASE_URL``; None means SQLite under the var dir."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield None
        return
    import psycopg

    name = f"arcportal_it_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 recording (headers, body) of every POST."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/arc-events"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def redis_cleanup():
    """``redis_cleanup(installation)`` registers an installation whose Redis keys (its Celery queue, its buffered
    heartbeats) are deleted at teardown. No-op for installations without ``REDIS_URL``."""
    registered: list[Installation] = []
    yield registered.append
    for installation in registered:
        url = installation.env.get("REDIS_URL")
        if not url:
            continue
        installation.stop_all()  # first: a live worker would declare its queue again
        import redis

        queue = installation.env["ARC_CELERY_QUEUE"]
        database_url = installation.env.get("DATABASE_URL")
        database = (
            urlsplit(database_url).path.lstrip("/") if database_url else str(installation.var_dir / "arcportal.sqlite3")
        )
        patterns = [f"{queue}*", f"_kombu.binding*.{queue}*", f"arc:hb:{{{database}}}:*", f"arc:cache:{{{database}}}:*"]
        client = redis.Redis.from_url(url)
        try:
            for pattern in patterns:
                for key in client.scan_iter(match=pattern):
                    client.delete(key)
        finally:
            client.close()
