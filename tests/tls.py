"""A live server over TLS in the test process, with a certificate issued by the portal CA.

The official Azure SDKs refuse bearer tokens over http (API-CONTRACT.md §1), so ARM and agent tests talk to this.
It runs Django's LiveServerThread with its listening socket wrapped in TLS; the test database is shared with it
exactly as pytest-django's ``live_server`` does (in-memory SQLite connections are passed to the thread).

On in-memory SQLite every request thread and the test share that one connection, so the server answers one request
at a time (``TLSLiveServer.lock``; test code that queries while the server runs may hold it too): two requests at
once would otherwise collide inside each other's transaction ("cannot start a transaction within a transaction",
or one leaving the other's atomic block and a 500 from ``set_rollback``). On PostgreSQL each thread has its own
connection and requests run concurrently, as in production.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread
from django.test.utils import modify_settings, override_settings


class _Server(ThreadedWSGIServer):
    def _close_connections(self):
        """After each request Django closes the thread's connections. A shared in-memory SQLite one is never closed
        (``close()`` only checks it is used in a thread allowed to, then keeps the database), and once the test ended
        and stopped sharing it, that check raises in a keep-alive request thread still winding down. So leave the
        shared ones alone and close the rest."""
        shared = self.connections_override or {}
        for conn in connections.all(initialized_only=True):
            if conn.alias not in shared:
                conn.close()


class TLSLiveServerThread(LiveServerThread):
    server_class = _Server

    def __init__(self, *args, certfile: str, keyfile: str, **kwargs):
        self.certfile = certfile
        self.keyfile = keyfile
        super().__init__(*args, **kwargs)

    def _create_server(self, connections_override=None):
        server = super()._create_server(connections_override=connections_override)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.base_environ["HTTPS"] = "on"
        return server


@dataclass
class TLSLiveServer:
    url: str
    host: str
    port: int
    ca_file: str
    thread: TLSLiveServerThread
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __str__(self) -> str:
        return self.url


def start_tls_live_server(host: str = "127.0.0.1") -> tuple[TLSLiveServer, list]:
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    from identity import pki

    pki.ensure_pki()
    directory = Path(settings.ARC_PKI_DIR)
    overrides = {
        alias: conn
        for alias, conn in ((c.alias, c) for c in connections.all())
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }
    thread = TLSLiveServerThread(
        host,
        static_handler=StaticFilesHandler,
        connections_override=overrides,
        certfile=str(directory / pki.SERVER_FILE),
        keyfile=str(directory / pki.SERVER_KEY_FILE),
    )
    thread.daemon = True
    for conn in overrides.values():
        conn.inc_thread_sharing()
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    url = f"https://{host}:{thread.port}"
    contexts = [
        modify_settings(ALLOWED_HOSTS={"append": host}),
        override_settings(ARC_PUBLIC_BASE_URL=url),
    ]
    for context in contexts:
        context.enable()
    server = TLSLiveServer(url=url, host=host, port=thread.port, ca_file=str(directory / pki.CA_FILE), thread=thread)
    if overrides:
        serialize(thread, server.lock)
    return server, [*contexts, _Stopper(thread, overrides)]


def serialize(thread: LiveServerThread, lock: threading.RLock) -> None:
    """Make ``thread``'s server answer one request at a time, holding ``lock`` (for a shared in-memory SQLite
    connection; the browser tests' ``live_server`` does the same, tests/conftest.py) until the response is closed:
    a streamed body (the CSV exports) still reads the database while it is sent."""
    httpd = thread.httpd
    app = httpd.get_app()

    def serialized(environ, start_response):
        lock.acquire()
        try:
            return _Held(app(environ, start_response), lock)
        except BaseException:
            lock.release()
            raise

    httpd.set_app(serialized)


class _Held:
    """A WSGI response that releases its lock when closed (wsgiref closes every response, sent or aborted, in the
    request's thread)."""

    def __init__(self, result, lock: threading.RLock):
        self.result = result
        self.lock: threading.RLock | None = lock

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        if self.lock is None:
            return
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            lock, self.lock = self.lock, None
            lock.release()


class _Stopper:
    def __init__(self, thread, overrides):
        self.thread = thread
        self.overrides = overrides

    def disable(self) -> None:
        self.thread.terminate()
        for conn in self.overrides.values():
            conn.dec_thread_sharing()
