"""A live server over TLS in the test process, with a certificate issued by the portal CA.

The official Azure SDKs refuse bearer tokens over http (API-CONTRACT.md §1), so ARM and agent tests talk to this.
It runs Django's LiveServerThread with its listening socket wrapped in TLS; the test database is shared with it
exactly as pytest-django's ``live_server`` does (in-memory SQLite connections are passed to the thread).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.test.testcases import LiveServerThread
from django.test.utils import modify_settings, override_settings


class TLSLiveServerThread(LiveServerThread):
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
    return server, [*contexts, _Stopper(thread, overrides)]


class _Stopper:
    def __init__(self, thread, overrides):
        self.thread = thread
        self.overrides = overrides

    def disable(self) -> None:
        self.thread.terminate()
        for conn in self.overrides.values():
            conn.dec_thread_sharing()
