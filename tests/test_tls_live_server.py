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


def test_the_lock_is_held_until_a_streamed_response_is_closed():
    """A streamed body (the CSV exports) reads the database while it is sent, so the lock is released only when the
    server closes the response; an app that raises releases it at once."""
    from types import SimpleNamespace

    from tests.tls import serialize

    class _Httpd:  # what serialize() uses of a server
        def __init__(self, app):
            self.app = app

        def get_app(self):
            return self.app

        def set_app(self, app):
            self.app = app

    lock = threading.RLock()

    def free() -> bool:
        """May another thread take the lock now?"""
        taken = []

        def try_it():
            if lock.acquire(blocking=False):
                taken.append(True)
                lock.release()

        thread = threading.Thread(target=try_it)
        thread.start()
        thread.join()
        return bool(taken)

    seen = []

    def streamed(environ, start_response):
        start_response("200 OK", [])
        yield b"a"
        seen.append(free())
        yield b"b"

    def failing(environ, start_response):
        raise ValueError("boom")

    def served(app):
        httpd = _Httpd(app)
        serialize(SimpleNamespace(httpd=httpd), lock)
        return httpd.app

    response = served(streamed)({}, lambda *a: None)
    assert list(response) == [b"a", b"b"] and seen == [False] and not free()
    response.close()
    assert free()
    response.close()  # a second close releases nothing more
    assert free()

    with pytest.raises(ValueError):
        served(failing)({}, lambda *a: None)
    assert free()
