"""What ``bench/serving_tiers.py`` and ``bench/fleet_capacity.py`` share: a throwaway portal (PostgreSQL database,
Redis, temporary ARC_VAR_DIR), the web tiers it can be served by, nginx in front from ``deploy/``, and CPU from
``/proc``: the serving part of the one bench harness (``bench/_harness/``).

Every process is started in its own session and stopped by its process-group id; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _harness import ROOT
from arcportal.serving import granian_command, gunicorn_command
from deploy.nginx import NGINX, make_prefix, render_site, render_standalone

BENCH_URLS = '''"""Bench-only URLconf: the project's URLs plus a bare JSON view (bench/serving_tiers.py)."""
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from arcportal.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def baseline(request):
    return JsonResponse({"status": "Connected", "nextHeartbeatSeconds": 300})


urlpatterns = [path("his/bench/baseline", baseline), *project_urlpatterns]
'''
BENCH_SETTINGS = 'from arcportal.settings import *  # noqa: F403\n\nROOT_URLCONF = "bench_serving_urls"\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The portal: database, var dir, Django ------------------------------------------------------------------------


@dataclass
class Portal:
    """A throwaway installation: ``database`` on the server of DATABASE_URL (dropped and made again; the URL's own
    database is never touched), REDIS_URL as cache and heartbeat buffer, a temporary ARC_VAR_DIR."""

    database: str
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="arcportal-bench-serving-")))
    admin_url: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = os.environ.copy()
        env.update(
            DJANGO_SETTINGS_MODULE="bench_serving_settings",
            PYTHONPATH=os.pathsep.join([str(self.tmp), str(ROOT)]),
            DJANGO_LOG_LEVEL="WARNING",
        )
        env.update(extra)
        return env

    def create(self) -> None:
        url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
        if not url.startswith(("postgres://", "postgresql://")):
            sys.exit("this bench needs PostgreSQL (DATABASE_URL=postgres://…)")
        if not os.environ.get("REDIS_URL"):
            sys.exit("this bench needs REDIS_URL (e.g. redis://127.0.0.1:6379/11)")
        import psycopg

        (self.tmp / "bench_serving_urls.py").write_text(BENCH_URLS)
        (self.tmp / "bench_serving_settings.py").write_text(BENCH_SETTINGS)
        parts = urlsplit(url)
        self.admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self.database}"))
        os.environ["ARC_VAR_DIR"] = str(self.tmp / "var")
        os.environ.pop("ARC_PKI_DIR", None)
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
        os.environ["DJANGO_SUPERUSER_PASSWORD"] = uuid.uuid4().hex  # bootstrap prints no generated password
        self.clear_redis()

    def setup_django(self) -> None:
        warnings.filterwarnings("ignore", message="No directory at")
        sys.path.insert(0, str(self.tmp))
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_serving_settings"
        os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
        import django

        django.setup()

    def manage(self, *args: str, **env: str) -> str:
        """``manage.py …`` in a process of its own with this portal's environment (no Django in the caller)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(**env), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def backends(self) -> list[int]:
        """Process ids of the PostgreSQL backends connected to this portal's database."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]).fetchall()
        return [row[0] for row in rows]

    def migrate_and_bootstrap(self) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with open(os.devnull, "w") as quiet:
            call_command("bootstrap", stdout=quiet)

    @property
    def pki(self) -> Path:
        return Path(os.environ["ARC_VAR_DIR"]) / "pki"

    @property
    def tls_files(self) -> tuple[str, str]:
        return str(self.pki / "server.pem"), str(self.pki / "server-key.pem")

    def clear_redis(self) -> None:
        """The heartbeat buffer and cache keys carry the database name (docs/status-engine.md): a database made
        again under the same name must not inherit them."""
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        try:
            for pattern in (f"arc:hb:{{{self.database}}}:*", f"arc:cache:{{{self.database}}}:*"):
                for key in client.scan_iter(match=pattern):
                    client.delete(key)
        finally:
            client.close()

    def drop(self) -> None:
        import psycopg

        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.admin_url:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.clear_redis()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- Processes and their CPU ---------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start(name: str, command: list[str], *, env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    process.log = log  # type: ignore[attr-defined]
    process.name = name  # type: ignore[attr-defined]
    return process


def stop(process: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    log = getattr(process, "log", None)
    if log is not None:
        log.close()


def wait_listening(port: int, process: subprocess.Popen, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.returncode}")  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not listen on {port} within {timeout:.0f} s")  # type: ignore[attr-defined]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuMeter:
    """CPU seconds of process trees, by process id, so a phase counts processes born during it from 0."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots

    def sample(self) -> dict[int, float]:
        return {pid: process_cpu(pid) for root in self.roots for pid in process_tree(root)}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def box_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- Web tiers -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    """One way to serve the portal. ``server`` runs the Python; ``nginx`` puts nginx (TLS, buffering) in front."""

    key: str
    label: str
    server: str  # "gunicorn-sync" | "gunicorn-gthread" | "granian-wsgi" | "granian" (asgi_buffered)
    nginx: bool = False


TIERS = {
    spec.key: spec
    for spec in (
        TierSpec("sync", "gunicorn sync (TLS in the worker)", "gunicorn-sync"),
        TierSpec("gthread", "gunicorn gthread (TLS in the worker)", "gunicorn-gthread"),
        TierSpec("granian-wsgi", "granian's WSGI runner (TLS in Rust)", "granian-wsgi"),
        TierSpec("granian", "granian + arcportal/asgi_buffered.py (TLS in Rust): `make run`", "granian"),
        TierSpec("nginx-gthread", "nginx (TLS) → gunicorn gthread", "gunicorn-gthread", nginx=True),
        TierSpec("nginx-granian", "nginx (TLS) → granian's WSGI runner: production", "granian-wsgi", nginx=True),
        TierSpec("nginx-sync", "nginx (TLS) → gunicorn sync", "gunicorn-sync", nginx=True),
        TierSpec("nginx-buffered", "nginx (TLS) → granian + asgi_buffered", "granian", nginx=True),
    )
}
DEFAULT_TIERS = ["sync", "gthread", "granian-wsgi", "granian", "nginx-gthread", "nginx-granian"]


def server_command(server: str, *, bind: str, workers: int, threads: int, tls: tuple[str, str] | None) -> list[str]:
    if server == "granian":
        return granian_command(bind=bind, workers=workers, tls=tls)  # threads: ARC_WEB_THREADS (start_tier)
    if server == "granian-wsgi":
        return granian_command(bind=bind, workers=workers, tls=tls, interface="wsgi", threads=threads)
    worker_class = "gthread" if server == "gunicorn-gthread" else "sync"
    # Behind nginx the upstream connections are kept alive; gunicorn's default keep-alive (2 s) is shorter than
    # nginx's upstream keepalive_timeout (20 s): longer here, so nginx always closes first.
    keep_alive = 75 if tls is None else None
    return gunicorn_command(
        bind=bind, workers=workers, worker_class=worker_class, threads=threads, tls=tls, keep_alive=keep_alive
    )


def start_nginx(
    *, prefix: Path, https_port: int, upstreams: list[str], tls: tuple[str, str], workers: int | str = 1
) -> subprocess.Popen:
    """nginx in the foreground from the site of ``deploy/``, on 127.0.0.1 ports, logs under ``prefix``."""
    make_prefix(prefix)
    site = prefix / "arcportal-site.conf"
    site.write_text(
        render_site(
            server_name="127.0.0.1",
            certificate=tls[0],
            certificate_key=tls[1],
            upstreams=upstreams,
            https_listen=f"127.0.0.1:{https_port}",
            http_listen=f"127.0.0.1:{free_port()}",
            access_log=str(prefix / "arcportal-access.log"),
        )
    )
    conf = prefix / "nginx.conf"
    conf.write_text(render_standalone(site=site, prefix=prefix, worker_processes=workers))
    command = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    process = start("nginx", command, env=os.environ.copy(), logs=prefix)
    wait_listening(https_port, process)
    return process


@dataclass
class Tier:
    """A started tier: its https port (what clients use) and the processes whose CPU is the tier's."""

    spec: TierSpec
    port: int
    processes: list[subprocess.Popen]

    @property
    def roots(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def start_tier(spec: TierSpec, portal: Portal, *, workers: int, threads: int, logs: Path) -> Tier:
    port = free_port()
    if spec.nginx:
        upstream = free_port()
        env = portal.env(DJANGO_BEHIND_TLS_PROXY="true", ARC_WEB_THREADS=str(threads))
        command = server_command(spec.server, bind=f"127.0.0.1:{upstream}", workers=workers, threads=threads, tls=None)
        web = start(spec.key, command, env=env, logs=logs)
        try:
            wait_listening(upstream, web)
            front = start_nginx(
                prefix=logs / f"nginx-{spec.key}",
                https_port=port,
                upstreams=[f"127.0.0.1:{upstream}"],
                tls=portal.tls_files,
            )
        except BaseException:
            stop(web)
            raise
        return Tier(spec, port, [web, front])
    bind = f"127.0.0.1:{port}"
    command = server_command(spec.server, bind=bind, workers=workers, threads=threads, tls=portal.tls_files)
    web = start(spec.key, command, env=portal.env(ARC_WEB_THREADS=str(threads)), logs=logs)
    try:
        wait_listening(port, web)
    except BaseException:
        stop(web)
        raise
    return Tier(spec, port, [web])
