"""What every benchmark of bench/ shares: a throwaway database and var directory, Django set up on them, a gunicorn
started and stopped around a run, and where CPU time went (Linux ``/proc``). Imported before Django is set up.

* ``throwaway_environment(name, …)`` — a temporary ``ARC_VAR_DIR`` and a database of its own: PostgreSQL database
  ``name`` on the server ``DATABASE_URL`` points at (dropped and created again; the URL's own database is never
  touched), or a SQLite file in the temporary directory when there is no ``DATABASE_URL``. With ``REDIS_URL`` the
  heartbeat buffer of that database name is emptied first and last. ``cleanup()`` undoes all of it.
* ``setup_django(**env)`` — the settings of a real installation (``arcportal.settings``) with a throwaway secret.
* ``start_gunicorn(…)`` / ``stop_gunicorn(…)`` — the portal's WSGI app on a free 127.0.0.1 port, plain http or TLS
  with the portal's server certificate (as ``manage.py serve`` runs the https side).
* ``process_cpu``, ``process_tree_cpu``, ``box_cpu_ticks``, ``own_cpu_seconds``, ``CpuSnapshot`` — CPU seconds;
  ``percentile`` — nearest rank.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "agent", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class BenchEnvironment:
    kind: str  # "postgresql" or "sqlite"
    var_dir: Path
    database: str
    cleanup: Callable[[], None]


def postgres_admin_url(url: str) -> str:
    """The maintenance database ``postgres`` on the server ``url`` points at (psycopg's scheme)."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres", scheme="postgresql"))


def recreate_postgres_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def postgres_database_exists(url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(postgres_admin_url(url), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def model_defaults(model, skip: set[str]) -> tuple[list[str], list]:
    """Columns and values for every field of ``model`` a bulk ``INSERT … SELECT`` doesn't set: the model's own
    defaults, as the ORM would write them."""
    from django.db import connection

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in skip:
            continue
        columns.append(field.column)
        values.append(field.get_db_prep_save(field.get_default(), connection))
    return columns, values


def drop_postgres_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clear_heartbeat_buffer(database: str) -> None:
    """With REDIS_URL the portal buffers heartbeats under ``arc:hb:{<database name>}:*`` (docs/status-engine.md): a
    database recreated under the same name must not inherit them."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"arc:hb:{{{database}}}:*"):
        client.delete(key)


def throwaway_environment(
    name: str, *, script: str, postgres_only: bool = False, keep: bool = False, reuse: bool = False
) -> BenchEnvironment:
    """A temporary ARC_VAR_DIR and the throwaway database ``name`` (``ARC_BENCH_DATABASE`` overrides it, for a server
    shared with other runs; see the module docstring); ``keep`` leaves both in place at cleanup, ``reuse`` keeps a
    PostgreSQL database an earlier ``keep`` left (the bench checks what it holds). Exits with a message for a
    database this bench does not support."""
    name = os.environ.get("ARC_BENCH_DATABASE") or name
    var_dir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    os.environ["ARC_VAR_DIR"] = str(var_dir)
    os.environ.pop("ARC_PKI_DIR", None)
    url = os.environ.get("DATABASE_URL", "")
    if postgres_only and not url:
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    if url.startswith(POSTGRES_SCHEMES):
        if not (reuse and postgres_database_exists(url, name)):
            recreate_postgres_database(url, name)
        clear_heartbeat_buffer(name)
        os.environ["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))

        def cleanup() -> None:
            _close_django_connections()
            if not keep:
                drop_postgres_database(url, name)
                clear_heartbeat_buffer(name)
                shutil.rmtree(var_dir, ignore_errors=True)

        return BenchEnvironment("postgresql", var_dir, name, cleanup)
    if url or postgres_only:
        sys.exit(f"{script} needs {'PostgreSQL' if postgres_only else 'SQLite or PostgreSQL'} (DATABASE_URL={url})")
    sqlite = var_dir / "bench.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{sqlite}"

    def remove() -> None:
        _close_django_connections()
        if not keep:
            shutil.rmtree(var_dir, ignore_errors=True)

    return BenchEnvironment("sqlite", var_dir, str(sqlite), remove)


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def setup_django(*, log_level: str = "WARNING", **env: str) -> None:
    """Django on the real settings (``arcportal.settings``), a throwaway secret, ``env`` set first."""
    warnings.filterwarnings("ignore", message="No directory at")  # WhiteNoise: no collectstatic in a throwaway run
    os.environ["DJANGO_SETTINGS_MODULE"] = "arcportal.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
    os.environ.setdefault("DJANGO_LOG_LEVEL", log_level)
    os.environ["DJANGO_SUPERUSER_PASSWORD"] = uuid.uuid4().hex  # bootstrap prints no generated password
    os.environ.update(env)
    import django

    django.setup()


def raise_keyboard_interrupt_on_sigterm() -> None:
    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


# --- gunicorn -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    port: int,
    *,
    workers: int,
    log_path: Path,
    tls: bool = False,
    env: dict[str, str] | None = None,
    pythonpath: Iterable[Path] = (),
    extra_args: Iterable[str] = (),
    settle_seconds: float = 0.0,
) -> subprocess.Popen:
    """gunicorn serving ``arcportal.wsgi`` on 127.0.0.1:``port``; returns once it accepts connections (plus
    ``settle_seconds`` for every worker to boot). ``tls``: the portal's server certificate and the TLS context hook
    of ``arcportal/gunicorn_conf.py``, as ``manage.py serve`` runs the https side."""
    environment = {**os.environ, **(env or {})}
    paths = [str(p) for p in pythonpath]
    if paths:
        environment["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    command = [sys.executable, "-m", "gunicorn", "arcportal.wsgi:application", "--workers", str(workers)]
    command += ["--timeout", "60", "--bind", f"127.0.0.1:{port}", *extra_args]
    if tls:
        from django.conf import settings

        pki = Path(settings.ARC_PKI_DIR)
        command += ["--config", "python:arcportal.gunicorn_conf"]
        command += ["--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server-key.pem")]
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process (stop_gunicorn)
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)
    process.log = log
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(settle_seconds)
            return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    sys.exit("gunicorn did not start listening within 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    log = getattr(process, "log", None)
    if log is not None:
        log.close()


# --- Where the CPU goes (Linux /proc) ---------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 when it is gone or /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_tree_cpu(pid: int) -> float | None:
    """User + system CPU of a running process and its live children (None where there is no /proc)."""
    if not Path(f"/proc/{pid}").exists():
        return None
    return sum(process_cpu(each) for each in [pid, *child_pids(pid)])


def box_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSnapshot:
    """CPU and load at one moment (a server process tree, this process, the whole box), to subtract two of."""

    at: float
    server_cpu: float | None
    own_cpu: float
    box: tuple[int, int] | None
    load: tuple[float, float, float]

    @classmethod
    def take(cls, server: subprocess.Popen) -> CpuSnapshot:
        return cls(time.time(), process_tree_cpu(server.pid), own_cpu_seconds(), box_cpu_ticks(), os.getloadavg())

    def until(self, end: CpuSnapshot) -> dict[str, float | None]:
        """CPU seconds of the server and of this process, and the box's busy share, from this snapshot to ``end``."""
        server = None
        if self.server_cpu is not None and end.server_cpu is not None:
            server = end.server_cpu - self.server_cpu
        busy = None
        if self.box and end.box and end.box[1] > self.box[1]:
            busy = (end.box[0] - self.box[0]) / (end.box[1] - self.box[1])
        return {"seconds": end.at - self.at, "server": server, "own": end.own_cpu - self.own_cpu, "busy": busy}


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``samples`` (not empty)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
