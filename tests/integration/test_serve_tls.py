"""``manage.py serve`` (``make run``): granian builds its TLS configuration once per worker, and a renewed server
certificate (``manage.py bootstrap`` with a new host name) is served without a restart: serve notices the new files
and sends the https server SIGHUP, which starts workers with them."""

from __future__ import annotations

import socket
import ssl
import sys

import pytest
from cryptography import x509

from tests.integration.conftest import free_port, wait_until

pytestmark = pytest.mark.integration


def served_serial(port: int, ca_file: str) -> int | None:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        plain = socket.create_connection(("127.0.0.1", port), timeout=5)
        with context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
            return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True)).serial_number
    except OSError:
        return None


def file_serial(path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_a_renewed_server_certificate_is_served_without_a_restart(make_installation):
    installation = make_installation(ARC_WEB_WORKERS="1", ARC_BEAT_LIVENESS_SECONDS="30")
    installation.manage("migrate", "--no-input")
    installation.manage("bootstrap")
    pki = installation.var_dir / "pki"
    http, https = free_port(), free_port()
    serve = installation.start(
        "serve",
        [sys.executable, "manage.py", "serve", "--http", f"127.0.0.1:{http}", "--https", f"127.0.0.1:{https}"],
    )
    first = file_serial(pki / "server.pem")
    try:
        wait_until(lambda: served_serial(https, str(pki / "ca.pem")) == first, timeout=60, message="no https")
        installation.env["ARC_PUBLIC_HOSTS"] = "renewed.arcportal.test"  # the certificate must cover a new name
        assert "Issued the TLS server certificate" in installation.manage("bootstrap")
        renewed = file_serial(pki / "server.pem")
        assert renewed != first
        wait_until(
            lambda: served_serial(https, str(pki / "ca.pem")) == renewed,
            timeout=60,
            message="the renewed certificate was never served",
        )
    except AssertionError:
        raise AssertionError(installation.logs()) from None
    assert serve.poll() is None  # the same serve, never restarted
    assert "the server certificate changed" in installation.log("serve")
