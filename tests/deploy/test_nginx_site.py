"""``deploy/nginx/arcportal.conf`` as ``deploy/nginx.py`` renders it: ``nginx -t`` accepts it (temp prefix, never the
system's configuration), it keeps slow clients and big bodies away from the web nodes, talks HTTP/1.1 keep-alive to
them and tells them the client's scheme, host and address — checked on a live nginx in front of a recording
upstream on 127.0.0.1."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploy.nginx import NGINX, main, make_prefix, render_site, render_standalone
from tests.integration.conftest import free_port, wait_until

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason=f"nginx is not installed at {NGINX}")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "deploy" / "nginx" / "arcportal.conf").read_text()


@pytest.fixture
def tls_files():
    from django.conf import settings

    from identity import pki

    pki.ensure_pki()
    directory = Path(settings.ARC_PKI_DIR)
    return str(directory / "server.pem"), str(directory / "server-key.pem"), str(directory / "ca.pem")


@pytest.fixture
def prefix():
    directory = Path(tempfile.mkdtemp(prefix="arcportal-nginx-test-"))
    make_prefix(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def write_config(prefix: Path, tls_files, upstreams: list[str], https_port: int, http_port: int) -> Path:
    site = prefix / "site.conf"
    site.write_text(
        render_site(
            server_name="127.0.0.1",
            certificate=tls_files[0],
            certificate_key=tls_files[1],
            upstreams=upstreams,
            https_listen=f"127.0.0.1:{https_port}",
            http_listen=f"127.0.0.1:{http_port}",
            access_log=str(prefix / "arcportal-access.log"),
        )
    )
    conf = prefix / "nginx.conf"
    conf.write_text(render_standalone(site=site, prefix=prefix))
    return conf


def test_nginx_accepts_the_rendered_site(prefix, tls_files):
    conf = write_config(prefix, tls_files, ["127.0.0.1:8001", "127.0.0.1:8002"], free_port(), free_port())
    result = subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_refuses_a_broken_site(prefix, tls_files):
    """The check above would notice a mistake: the same site with a directive misspelt fails ``nginx -t``."""
    conf = write_config(prefix, tls_files, ["127.0.0.1:8001"], free_port(), free_port())
    site = prefix / "site.conf"
    site.write_text(site.read_text().replace("client_body_timeout", "client_body_timeuot"))
    result = subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "client_body_timeuot" in result.stderr


def directive(name: str, text: str = TEMPLATE) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{name}\s+([^;]*);", text, re.MULTILINE)]


def seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(s|m)?", value).groups()
    return int(number) * (60 if unit == "m" else 1)


def test_the_site_holds_the_limits_the_portal_relies_on():
    from django.conf import settings

    assert all(seconds(v) <= 10 for v in directive("client_header_timeout") + directive("client_body_timeout"))
    assert directive("client_header_timeout") and directive("client_body_timeout")
    size = directive("client_max_body_size")[0]
    assert int(size.rstrip("m")) * 1024 * 1024 >= settings.ARC_WEB_MAX_BODY_BYTES  # the portal's own limit, not less
    assert set(directive("proxy_http_version")) == {"1.1"}
    assert directive("proxy_set_header").count('Connection ""') == 2  # keep-alive upstream, in both locations
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "X-Forwarded-Host $host"):
        assert directive("proxy_set_header").count(header) == 2, header
    assert directive("keepalive") and "off" not in directive("proxy_request_buffering")
    # nginx drops an idle upstream connection before granian does (30 s), never the other way round.
    assert seconds(directive("keepalive_timeout")[0]) < 30
    assert directive("ssl_protocols") == ["TLSv1.2 TLSv1.3"]


def test_render_fills_every_placeholder_and_refuses_bad_values(tls_files, capsys):
    site = render_site(
        server_name="arc.example.com", certificate="/c.pem", certificate_key="/k.pem", upstreams=["127.0.0.1:8001"]
    )
    assert "@" not in site.replace("$", "")
    assert "server 127.0.0.1:8001 max_fails=1 fail_timeout=5s;" in site
    for bad in ("arc.example.com; include /etc/passwd", "a b}", ""):
        with pytest.raises(ValueError):
            render_site(server_name=bad, certificate="/c", certificate_key="/k", upstreams=["127.0.0.1:1"])
    with pytest.raises(ValueError):
        render_site(server_name="a", certificate="/c", certificate_key="/k", upstreams=[])
    assert main(["--server-name", "arc.example.com", "--pki-dir", "/srv/pki", "--upstream", "127.0.0.1:8002"]) == 0
    printed = capsys.readouterr().out
    assert "ssl_certificate /srv/pki/server.pem;" in printed and "server 127.0.0.1:8002 " in printed
    assert main(["--server-name", "x;y"]) == 2


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as granian speaks it
    seen: list[dict] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Recorder.seen.append(
            {"path": self.path, "headers": dict(self.headers), "peer": self.client_address, "body": len(body)}
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def https_request(port: int, raw: bytes, ca_file: str) -> bytes:
    context = ssl.create_default_context(cafile=ca_file)
    plain = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_live_nginx_forwards_scheme_host_and_client_keeps_upstream_alive_and_stops_big_bodies(prefix, tls_files):
    Recorder.seen = []
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    https_port, http_port = free_port(), free_port()
    conf = write_config(prefix, tls_files, [f"127.0.0.1:{upstream.server_address[1]}"], https_port, http_port)
    nginx = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _listening(https_port), timeout=20, message="nginx did not listen")
        for _ in range(3):
            answer = https_request(
                https_port,
                b"POST /his/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 4\r\n"
                b"Connection: close\r\n\r\nbody",
                tls_files[2],
            )
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        big = https_request(
            https_port,
            b"POST /his/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3000000\r\nConnection: close\r\n\r\n",
            tls_files[2],
        )
        plain = socket.create_connection(("127.0.0.1", http_port), timeout=10)
        plain.sendall(b"GET /machines HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        redirect = plain.recv(4096)
        plain.close()
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()

    assert big.startswith(b"HTTP/1.1 413"), big[:100]  # refused by nginx, never sent upstream
    assert redirect.startswith(b"HTTP/1.1 301") and b"Location: https://127.0.0.1/machines" in redirect
    assert len(Recorder.seen) == 3 and all(r["body"] == 4 for r in Recorder.seen)
    headers = Recorder.seen[0]["headers"]
    assert headers["X-Forwarded-Proto"] == "https" and headers["X-Forwarded-Host"] == "127.0.0.1"
    assert headers["Host"] == "127.0.0.1"
    # The client's claim stays first; the address nginx saw is appended last (what the portal trusts).
    assert headers["X-Forwarded-For"] == "6.6.6.6, 127.0.0.1"
    assert "Connection" not in headers or headers["Connection"].lower() != "close"
    assert len({r["peer"] for r in Recorder.seen}) == 1  # one kept-alive upstream connection for all three


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
