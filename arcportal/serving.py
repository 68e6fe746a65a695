"""How the portal's web processes are started: one place for ``manage.py serve`` (``make run``), the systemd unit of
``deploy/``, the benches (``bench/serving_tiers.py``, ``bench/fleet_capacity.py``) and the tests that run them.

granian serves the portal everywhere; connections, HTTP parsing and TLS are Rust. Chosen by measurement
(docs/decisions.md, "Serving tier"; figures in docs/performance.md):

* ``make run`` (nothing in front): ``granian_command(interface="asgi")`` — ``arcportal/asgi_buffered.py`` reads each
  request whole in the event loop before a Python thread sees it, so a client sending half a request holds no
  thread;
* production: nginx in front (TLS, request buffering, limits: ``deploy/nginx/arcportal.conf``) and
  ``granian_command(interface="wsgi")`` on plain http behind it — nginx already buffers every request, and granian's
  own WSGI runner costs less CPU per request than the buffering front.

gunicorn stays for the benches' comparison (and for whoever runs it behind their own proxy).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

WSGI_APP = "arcportal.wsgi:application"
# Django's WSGI handler behind an ASGI front that reads each request whole first (arcportal/asgi_buffered.py).
BUFFERED_APP = "arcportal.asgi_buffered:application"
# TLS 1.2 as the floor: Windows Server 2019's Schannel (the Windows installer, azcmagent on 2019) has no TLS 1.3.
TLS_MIN = "tls1.2"


def split_bind(bind: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"`` → ``("127.0.0.1", 8000)``; ``"[::1]:8443"`` → ``("::1", 8443)``."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"not HOST:PORT: {bind!r}")
    return host.strip("[]"), int(port)


def granian_command(
    *,
    bind: str,
    workers: int,
    tls: tuple[str, str] | None = None,
    python: str = sys.executable,
    backlog: int = 2048,
    access_log: bool = False,
    interface: str = "asgi",
    threads: int = 1,
) -> list[str]:
    """granian serving the portal on ``bind``; ``tls`` = (certificate, key) files (PKCS#8).

    ``interface="asgi"`` (``make run``): ``arcportal/asgi_buffered.py``, whose thread pool has ``ARC_WEB_THREADS``
    threads per worker (set it in the environment). ``interface="wsgi"`` (behind nginx) is granian's own WSGI runner
    with ``threads`` threads per worker: it streams request bodies into its threads, so it must not face clients
    itself. HTTP/1.1 only: agents, the SDKs and nginx's upstream connections speak it."""
    host, port = split_bind(bind)
    command = [python, "-m", "granian", "--interface", interface, "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--backlog", str(backlog)]
    if interface == "wsgi":
        command += ["--blocking-threads", str(threads)]
    command += ["--http", "1", "--no-ws", "--respawn-failed-workers", "--log-level", "warning"]
    if access_log:
        command += ["--access-log"]
    if tls is not None:
        command += ["--ssl-certificate", tls[0], "--ssl-keyfile", tls[1], "--ssl-protocol-min", TLS_MIN]
    return [*command, BUFFERED_APP if interface == "asgi" else WSGI_APP]


def gunicorn_command(
    *,
    bind: str,
    workers: int,
    worker_class: str = "sync",
    threads: int = 1,
    tls: tuple[str, str] | None = None,
    python: str = sys.executable,
    backlog: int = 2048,
    keep_alive: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """gunicorn serving the portal on ``bind`` with the TLS-context hook of ``arcportal/gunicorn_conf.py``."""
    command = [python, "-m", "gunicorn", WSGI_APP, "--config", "python:arcportal.gunicorn_conf"]
    command += ["--workers", str(workers), "--worker-class", worker_class, "--bind", bind]
    command += ["--timeout", "60", "--backlog", str(backlog)]
    if worker_class == "gthread":
        command += ["--threads", str(threads)]
    if keep_alive is not None:
        command += ["--keep-alive", str(keep_alive)]
    if tls is not None:
        command += ["--certfile", tls[0], "--keyfile", tls[1]]
    return [*command, *extra]
