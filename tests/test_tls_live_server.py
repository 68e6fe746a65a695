"""The TLS live server that ARM and agent tests use presents a certificate issued by the portal CA, and on shared
in-memory SQLite answers one request at a time (tests/tls.py)."""

import ssl
import threading

import httpx
import pytest
from django.db import connection


def _context(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


def test_tls_live_server_is_trusted_through_the_portal_ca(tls_live_server):
    response = httpx.get(f"{tls_live_server.url}/healthz", verify=_context(tls_live_server))
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_tls_live_server_is_not_trusted_without_the_ca(tls_live_server):
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_live_server.url}/healthz")


@pytest.mark.parametrize("fixture", ["tls_live_server", "live_server"])
def test_requests_wait_for_the_lock_only_where_the_database_connection_is_shared(request, fixture):
    """In-memory SQLite: every request thread uses the test's one connection, so a request waits while the lock is
    held (two at once collided inside each other's transaction: a 500 from ``set_rollback``). PostgreSQL: each
    thread has its own connection and requests run at once, as in production. The same for the browser tests'
    ``live_server`` (plain http)."""
    server = request.getfixturevalue(fixture)
    verify = _context(server) if fixture == "tls_live_server" else True
    shared = connection.vendor == "sqlite" and connection.is_in_memory_db()
    answered = threading.Event()

    def ask():
        httpx.get(f"{server.url}/healthz", verify=verify, timeout=30)
        answered.set()

    with server.lock:
        thread = threading.Thread(target=ask)
        thread.start()
        assert answered.wait(timeout=2 if shared else 30) is not shared
    thread.join(timeout=30)
    assert answered.is_set()
