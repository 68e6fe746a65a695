"""A database restart costs no request: gunicorn workers keep their PostgreSQL connections between requests
(``CONN_MAX_AGE``); after the server dropped them every first request on a stale connection used to answer 500.
``CONN_HEALTH_CHECKS`` makes Django check a kept connection before its first use in a request and reconnect."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.integration.conftest import free_port, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="SQLite opens a file, there is no server connection to lose (the PostgreSQL CI run executes this)",
    ),
]
WORKERS = 2


def backends(admin_url: str, database: str) -> list[int]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchall()
    return [pid for (pid,) in rows]


def terminate_backends(admin_url: str, database: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def test_no_request_fails_after_the_database_terminated_every_kept_connection(make_installation, database_url):
    installation = make_installation(
        DATABASE_URL=database_url, DJANGO_SUPERUSER_PASSWORD="restart-test-password", DJANGO_CONN_MAX_AGE="600"
    )
    installation.manage("migrate", "--no-input", "--verbosity", "0")
    installation.manage("bootstrap")
    token = installation.manage("issue_token", "--user", "admin").strip()
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "arcportal.wsgi:application", "--workers", str(WORKERS)]
    installation.start("web", [*gunicorn, "--bind", f"127.0.0.1:{port}", "--timeout", "60"])

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False

    wait_until(listening, timeout=60, message="gunicorn is not listening")
    parts = urlsplit(database_url)
    database, admin_url = parts.path.lstrip("/"), urlunsplit(parts._replace(path="/postgres"))
    headers = {"Authorization": f"Bearer {token}"}
    paths = ["/subscriptions?api-version=2022-12-01", "/healthz"]

    def statuses(client: httpx.Client, rounds: int) -> list[int]:
        return [client.get(path, headers=headers).status_code for _ in range(rounds) for path in paths]

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        # Until every worker holds its kept connection (requests go to whichever worker accepts first).
        wait_until(
            lambda: statuses(client, 3) and len(backends(admin_url, database)) >= WORKERS,
            timeout=60,
            message="the workers did not keep their connections",
        )
        assert set(statuses(client, 5)) == {200}
        assert terminate_backends(admin_url, database) >= WORKERS

        after = statuses(client, 10)
    assert [status for status in after if status >= 500] == [], (after, installation.logs())
    assert set(after) == {200}
    assert len(backends(admin_url, database)) >= 1  # the workers reconnected
