"""Fleet simulator benchmark: N simulated agents onboard and heartbeat against a live portal (gunicorn over TLS).

    .venv/bin/python bench/simulator.py [--machines 10000] [--minutes 10] [--interval 60] [--web-workers 2]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/simulator.py --machines 1000 …

It starts its own portal on a throwaway database — PostgreSQL ``arcportal_bench_sim`` (created and dropped here,
never the database the URL names) when DATABASE_URL is set, else a SQLite file — and a temporary ARC_VAR_DIR (PKI,
file cache): migrate, bootstrap, then ``gunicorn --certfile`` with ``--web-workers`` sync workers on a free
127.0.0.1 port, as ``manage.py serve`` runs the https side. REDIS_URL, when set, is the portal's cache (the
heartbeat replay check) and heartbeat buffer, as in production; the buffer is flushed before the report. Then
``machines/simulator.py`` runs the fleet in this process: every machine its own RSA key, registration, certificate
and signed heartbeats every ``--interval`` seconds (less up to 10% jitter) for ``--minutes``, onboarding included.
It prints the heartbeat counters (goal: 0 rejected, 0 lost), round-trip times, and what the portal's database says
about the machines afterwards. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "arcportal_bench_sim"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=10_000, help="simulated agents (default 10000)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run, onboarding included")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between heartbeats (default 60)")
    parser.add_argument("--offline-fraction", type=float, default=0.0, help="share that stops after onboarding")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight at most (default 32)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--key-workers", type=int, default=None, help="processes making RSA keys (default: CPUs)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and directory afterwards")
    args = parser.parse_args()
    if args.machines < 1 or args.minutes <= 0 or args.interval <= 0:
        parser.error("--machines, --minutes and --interval must be positive")
    return args


# --- Database and Django (before Django is imported) -------------------------------------------------------------


def prepare_environment() -> tuple[str, Path, callable]:
    """A temporary ARC_VAR_DIR and a throwaway database; returns the database kind, the directory, a cleanup."""
    tmp = Path(tempfile.mkdtemp(prefix="arcportal-bench-sim-"))
    os.environ["ARC_VAR_DIR"] = str(tmp)
    os.environ.pop("ARC_PKI_DIR", None)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        import psycopg

        parts = urlsplit(url)
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
        admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
        clear_heartbeat_buffer()

        def cleanup() -> None:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            clear_heartbeat_buffer()
            shutil.rmtree(tmp, ignore_errors=True)

        return "postgresql", tmp, cleanup
    if url:
        sys.exit(f"bench/simulator.py supports SQLite (no DATABASE_URL) or PostgreSQL, not {url.split(':')[0]}")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    return "sqlite", tmp, lambda: shutil.rmtree(tmp, ignore_errors=True)


def clear_heartbeat_buffer() -> None:
    """With REDIS_URL the portal buffers heartbeats under ``arc:hb:{<database name>}:*`` (docs/status-engine.md): a
    database recreated under the same name must not inherit them."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"arc:hb:{{{BENCH_DB}}}:*"):
        client.delete(key)


def setup_django(interval: float) -> None:
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["DJANGO_SETTINGS_MODULE"] = "arcportal.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + uuid.uuid4().hex)
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SUPERUSER_PASSWORD"] = uuid.uuid4().hex  # bootstrap prints no generated password
    os.environ["ARC_HEARTBEAT_INTERVAL_SECONDS"] = str(max(1, round(interval)))
    # Offline only well after a missed beat: a Connected count below the fleet means heartbeats really went missing.
    os.environ["ARC_OFFLINE_AFTER_SECONDS"] = str(max(1500, round(3 * interval)))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_portal(port: int, workers: int, log_path: Path) -> subprocess.Popen:
    from django.conf import settings

    os.environ["ARC_PUBLIC_BASE_URL"] = f"https://127.0.0.1:{port}"
    pki = Path(settings.ARC_PKI_DIR)
    command = [sys.executable, "-m", "gunicorn", "arcportal.wsgi:application", "--workers", str(workers)]
    command += ["--timeout", "60", "--bind", f"127.0.0.1:{port}"]
    command += ["--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server-key.pem")]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    stop_portal(process)
    sys.exit("gunicorn did not start listening within 60 s")


def stop_portal(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- The run -----------------------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl+C, so the portal is stopped and the database dropped


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    kind, tmp, cleanup = prepare_environment()
    portal = None
    try:
        setup_django(args.interval)
        from django.core.management import call_command
        from django.db import connection, connections

        call_command("migrate", verbosity=0)
        call_command("bootstrap", stdout=open(os.devnull, "w"))  # noqa: SIM115 - discarded output
        print(
            f"database: {kind} ({connection.settings_dict['NAME']}); "
            f"cache: {'Redis' if os.environ.get('REDIS_URL') else 'file-based'}"
        )
        port = free_port()
        log_path = tmp / "gunicorn.log"
        portal = start_portal(port, args.web_workers, log_path)
        config = fleet_config(args, port)
        connections.close_all()  # the portal owns the database while the fleet runs
        print(
            f"{args.machines:,} machines × {args.minutes:g} min, heartbeat every {args.interval:g} s, "
            f"{args.web_workers} gunicorn workers on https://127.0.0.1:{port}, concurrency {args.concurrency}, "
            f"{os.cpu_count()} CPUs"
        )
        stats = run_fleet(config)
        stop_portal(portal)
        report(args, stats)
    finally:
        if portal is not None:
            stop_portal(portal)
        if args.keep:
            print(f"kept {os.environ['DATABASE_URL']} and {tmp}")
        else:
            cleanup()


def fleet_config(args: argparse.Namespace, port: int):
    from django.conf import settings

    from machines.selectors import subscription_list, tenant_get
    from machines.services import resource_group_create
    from machines.simulator import FleetConfig
    from onboarding.models import Role
    from onboarding.pki import CA_FILE
    from onboarding.service_principals import service_principal_create

    tenant, subscription = tenant_get(), subscription_list().first()
    group = resource_group_create(subscription=subscription, name="bench-fleet", location="westeurope")
    created = service_principal_create(display_name="bench fleet", role=Role.ONBOARDING, scope=group.arm_id)
    return FleetConfig(
        portal_url=f"https://127.0.0.1:{port}",
        ca_file=str(Path(settings.ARC_PKI_DIR) / CA_FILE),
        tenant_id=str(tenant.tenant_id),
        subscription_id=str(subscription.subscription_id),
        resource_group=group.name,
        client_id=str(created.service_principal.client_id),
        client_secret=created.secret,
        machines=args.machines,
        offline_fraction=args.offline_fraction,
        duration=args.minutes * 60,
        interval=args.interval,
        concurrency=args.concurrency,
        name_prefix="bench",
        key_workers=args.key_workers,
        seed=42,
    )


def run_fleet(config):
    from tqdm import tqdm

    from machines.simulator import FleetSimulation

    progress = tqdm(total=config.machines, desc="onboarding", unit="machine")

    def onboarded(machine) -> None:
        progress.update(1)
        if progress.n >= config.machines:
            progress.close()

    async def fleet():
        simulation = FleetSimulation(config, on_onboarded=onboarded)

        async def every_minute():
            while True:
                await asyncio.sleep(60)
                stats = simulation.stats
                tqdm.write(
                    f"  {time.time() - stats.started_at:5.0f} s: {stats.onboarded:,} onboarded, "
                    f"{stats.heartbeats_sent:,} heartbeats sent, {stats.heartbeats_accepted:,} accepted, "
                    f"{stats.rejected} rejected, {len(stats.heartbeat_errors)} error kinds"
                )

        ticker = asyncio.ensure_future(every_minute())
        try:
            return await simulation.run()
        finally:
            ticker.cancel()

    try:
        return asyncio.run(fleet())
    finally:
        progress.close()


def report(args: argparse.Namespace, stats) -> None:
    from django.db.models import Count
    from django.utils import timezone

    from machines.heartbeats import heartbeat_flush

    heartbeat_flush()  # heartbeats still buffered in Redis (REDIS_URL), so the database below is complete

    from machines.conf import status_thresholds
    from machines.models import Machine, MachineStatusEvent
    from machines.status import derive_status

    print()
    for line in stats.summary_lines():
        print(line)
    elapsed = stats.finished_at - stats.started_at
    for label, timings in (
        ("all", stats.heartbeat_timings),
        ("after onboarding", [t for t in stats.heartbeat_timings if t[0] >= stats.onboarding_seconds]),
    ):
        if not timings:
            continue
        ms = [seconds * 1000 for _, seconds in timings]
        print(
            f"heartbeat round trip, {label} ({len(ms):,}; TLS handshake included): p50 {statistics.median(ms):.1f} ms, "
            f"p95 {percentile(ms, 95):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
        )
    print(f"{stats.heartbeats_sent / max(elapsed, 1):.1f} heartbeats/s on average over the run")
    steady = max(0.0, elapsed - stats.onboarding_seconds)
    print(
        f"onboarding: {stats.onboarded / max(stats.onboarding_seconds, 0.001):.1f} machines/s; "
        f"steady state {steady:.0f} s"
    )
    print(
        f"CPU of the portal (gunicorn and its workers): {cpu_seconds_of_children():.1f} s; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )

    now = timezone.now()
    thresholds = status_thresholds()
    machines = list(Machine.objects.filter(resource_group__name="bench-fleet"))
    derived = Counter(
        derive_status(last_heartbeat_at=m.last_heartbeat_at, now=now, thresholds=thresholds) for m in machines
    )
    # A heartbeating machine that onboarded early enough to owe a beat in the last 1.5 intervals (+30 s) but whose
    # last beat is older missed one. Machines onboarded later than that are counted apart.
    window = 1.5 * args.interval + 30
    owing = {
        m.vm_id for m in stats.machines if m.onboarded and m.stays_online and m.onboarded_after <= elapsed - window
    }
    late = [
        m
        for m in machines
        if str(m.vm_id) in owing
        and (m.last_heartbeat_at is None or m.last_heartbeat_at < now - timedelta(seconds=window))
    ]
    never = sum(1 for m in stats.machines if m.onboarded and m.heartbeats_sent == 0)
    print()
    print(f"portal database: {len(machines):,} machines in bench-fleet")
    print(
        "  distinct certificate thumbprints: "
        f"{len({m.certificate_thumbprint for m in machines if m.certificate_thumbprint}):,}"
    )
    print(f"  distinct registered public keys: {len({m.client_public_key for m in machines}):,}")
    print(f"  provisioning: {dict(Counter(m.provisioning_state for m in machines))}")
    print(f"  recorded status: {dict(Counter(m.status for m in machines))}; derived now: {dict(derived)}")
    print(f"  OS: {dict(Counter(m.os_sku for m in machines).most_common(6))}")
    print(f"  heartbeating machines without a beat in the last 1.5 intervals (+30 s): {len(late)} of {len(owing):,}")
    print(f"  onboarded too close to the end for a first heartbeat: {never}")
    events = MachineStatusEvent.objects.filter(machine__resource_group__name="bench-fleet")
    print(f"  status events: {dict(events.values_list('to_status').annotate(n=Count('id')).order_by())}")
    per_machine = [m.heartbeats_accepted for m in stats.machines if m.onboarded and m.stays_online]
    if per_machine:
        print(
            f"  heartbeats accepted per heartbeating machine: min {min(per_machine)}, "
            f"median {statistics.median(per_machine):g}, max {max(per_machine)}"
        )
    goal = stats.rejected == 0 and stats.lost == 0 and not stats.onboarding_failures and not late
    print(f"\ngoal (0 rejected, 0 lost, every machine onboarded and on time): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: the portal was stopped and the bench database dropped")
