"""Issue 15: slow clients cannot take the portal down. ``manage.py serve`` (what ``make run`` runs) on free ports,
200 clients on each of its two ports holding half-sent requests (half stop inside the headers, half inside a
declared body; one more byte every 2 s), and ``/healthz`` asked meanwhile on both ports, one request after
another on a new connection each: p99 under 100 ms, none failing. Loopback only, bounded (every wait has a
timeout, every process is killed at teardown).

Before the serving tier changed, two such connections per port stalled ``/healthz`` for 20 s (two sync gunicorn
workers reading the half-sent requests).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import time
import urllib.request

import pytest

from tests.integration.conftest import Installation, free_port, installation_env, wait_until

pytestmark = pytest.mark.integration

SLOW_CLIENTS_PER_PORT = 200
FORM_HEAD = (
    b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\n"
)
PROBE_SECONDS = 12.0
P99_LIMIT_MS = 100.0


@pytest.fixture
def serve(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    installation = Installation(var_dir, installation_env(var_dir))
    installation.manage("migrate", "--no-input")
    installation.manage("bootstrap")
    installation.manage("collectstatic", "--no-input", "--verbosity", "0")
    http, https = free_port(), free_port()
    command = [sys.executable, "manage.py", "serve", "--http", f"127.0.0.1:{http}", "--https", f"127.0.0.1:{https}"]
    installation.start("serve", command)
    context = ssl.create_default_context(cafile=str(var_dir / "pki" / "ca.pem"))
    try:
        for url in (f"http://127.0.0.1:{http}/healthz", f"https://127.0.0.1:{https}/healthz"):
            wait_until(lambda url=url: _get(url, context), timeout=60, message=f"{url} never answered 200")
    except AssertionError:
        installation.stop_all()
        raise AssertionError(installation.logs()) from None
    yield installation, http, https, context
    installation.stop_all()


def _get(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context if url.startswith("https") else None) as answer:
            return answer.status == 200
    except OSError:
        return False


class SlowClients:
    """``count`` connections on a port, each with half a request sent, then one byte every 2 s. One the server
    drops (a header or body timeout: the right defence) is replaced by a new one, so the pressure holds all along.
    """

    def __init__(self, port: int, count: int, context: ssl.SSLContext | None) -> None:
        self.port, self.count, self.context = port, count, context
        self.sockets: list[socket.socket] = []
        self.opened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self, index: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_hostname="127.0.0.1")  # the handshake completes here
        if index % 2:  # a sign-in form, whose body the portal reads (its input guard checks every form body)
            sock.sendall(FORM_HEAD + b"username=")
        else:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.setblocking(False)
        self.opened += 1
        return sock

    def start(self) -> None:
        self.sockets = [self._open(index) for index in range(self.count)]
        self.thread.start()

    def _held(self, sock: socket.socket) -> bool:
        """Nothing came back and the connection is open (b"" = closed; bytes = answered, e.g. 408)."""
        try:
            sock.recv(1)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except OSError:
            return False
        return False

    def _trickle(self) -> None:
        while not self.stop.wait(2.0):
            for index, sock in enumerate(self.sockets):
                if self.stop.is_set():
                    return
                try:
                    if self._held(sock):
                        sock.send(b"a")
                        continue
                except OSError:
                    pass
                with contextlib.suppress(OSError):
                    sock.close()
                with contextlib.suppress(OSError):
                    self.sockets[index] = self._open(index)

    def held(self) -> int:
        return sum(1 for sock in self.sockets if self._held(sock))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _probe(port: int, context: ssl.SSLContext | None) -> tuple[float, bool]:
    """GET /healthz on a new connection; (milliseconds, answered 200)."""
    started = time.perf_counter()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        with sock:
            sock.settimeout(5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        ok = answer.startswith(b"HTTP/1.1 200") and b'"status": "ok"' in answer
    except OSError:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def test_healthz_stays_fast_while_200_slow_clients_hold_each_port(serve):
    installation, http, https, context = serve
    ports = (("http", http, None), ("https", https, context))
    for _ in range(10):  # every worker has answered once (the first request of a process loads the URLconf)
        for _name, port, tls in ports:
            _probe(port, tls)
    slow = [SlowClients(http, SLOW_CLIENTS_PER_PORT, None), SlowClients(https, SLOW_CLIENTS_PER_PORT, context)]
    try:
        for clients in slow:
            clients.start()
        time.sleep(1.0)  # every half request has reached the server
        timings: dict[str, list[float]] = {"http": [], "https": []}
        failed: list[str] = []
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline:
            for name, port, tls in ports:
                ms, ok = _probe(port, tls)
                timings[name].append(ms)
                if not ok:
                    failed.append(f"{name} after {ms:.0f} ms")
            time.sleep(0.02)
        held = [clients.held() for clients in slow]
        opened = [clients.opened for clients in slow]
    finally:
        for clients in slow:
            clients.close()

    every = sorted(timings["http"] + timings["https"])
    p99 = every[min(len(every) - 1, int(0.99 * len(every)))]
    summary = {name: (len(ms), round(sorted(ms)[len(ms) // 2], 1), round(max(ms), 1)) for name, ms in timings.items()}
    assert not failed, (failed[:10], installation.log("serve")[-3000:])
    assert min(len(ms) for ms in timings.values()) >= 20, summary
    # The slow clients were there all along: at the end, nearly all of both ports' 200 were connected and waiting
    # (the ones the server dropped on a timeout had been replaced).
    assert min(held) >= SLOW_CLIENTS_PER_PORT * 0.9, (held, opened)
    assert p99 < P99_LIMIT_MS, (p99, summary, opened)
