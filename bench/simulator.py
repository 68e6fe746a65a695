"""Fleet simulator benchmark: N simulated agents onboard and heartbeat against a live portal (gunicorn over TLS).

    .venv/bin/python bench/simulator.py [--machines 10000] [--minutes 10] [--interval 60] [--web-workers 2]
        [--key-cache var/bench-keys] [--onboarding-minutes 60]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/simulator.py --machines 1000 …

It starts its own portal on a throwaway database — PostgreSQL ``arcportal_bench_sim`` (created and dropped here,
never the database the URL names) when DATABASE_URL is set, else a SQLite file — and a temporary ARC_VAR_DIR (PKI,
file cache): migrate, bootstrap, then ``gunicorn --certfile`` with ``--web-workers`` sync workers on a free
127.0.0.1 port, as ``manage.py serve`` runs the https side. REDIS_URL, when set, is the portal's cache (the
heartbeat replay check) and heartbeat buffer, as in production; the buffer is flushed before the report. Then
The ``simulator`` package runs the fleet in this process: every machine its own RSA key, registration, certificate
and signed heartbeats every ``--interval`` seconds (less up to 10% jitter). The fleet onboards first (at most
``--onboarding-minutes``; onboarded machines heartbeat meanwhile), then the timed window of ``--minutes`` starts.
It prints onboarding and the window apart — the window's heartbeat counters (goal: 0 rejected, 0 lost), round-trip
times, the portal's CPU and the load — and what the portal's database says about the machines afterwards.

``--key-cache DIR`` keeps the machines' RSA keys as PEM files (``DIR/key-00000.pem`` …): the missing ones are made
first (progress bar, ``--key-workers`` processes), later runs reuse them. Each machine still has its own distinct
key; only the ~50–65 ms of CPU per key leaves the run. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from _harness import (
    CpuSnapshot,
    free_port,
    own_cpu_seconds,
    setup_django,
    start_gunicorn,
    stop_gunicorn,
    throwaway_environment,
)

BENCH_DB = "arcportal_bench_sim"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=10_000, help="simulated agents (default 10000)")
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="the timed window, from when the whole fleet has onboarded"
    )
    parser.add_argument(
        "--onboarding-minutes", type=float, default=60.0, help="no machine starts onboarding later (default 60)"
    )
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between heartbeats (default 60)")
    parser.add_argument("--offline-fraction", type=float, default=0.0, help="share that stops after onboarding")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight at most (default 32)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--key-workers", type=int, default=None, help="processes making RSA keys (default: CPUs)")
    parser.add_argument(
        "--key-cache", type=Path, default=None, help="directory of reusable machine keys (e.g. var/bench-keys)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database and directory afterwards")
    args = parser.parse_args(argv)
    if args.machines < 1 or args.minutes <= 0 or args.interval <= 0 or args.onboarding_minutes <= 0:
        parser.error("--machines, --minutes, --onboarding-minutes and --interval must be positive")
    return args


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fill_keys(directory: Path, machines: int, workers: int | None) -> None:
    from tqdm import tqdm

    from simulator.keys import fill_key_cache, key_cache_missing

    missing = len(key_cache_missing(directory, machines))
    if not missing:
        print(f"key cache {directory}: all {machines:,} keys present")
        return
    started, cpu = time.monotonic(), cpu_seconds_of_children() + own_cpu_seconds()
    with tqdm(total=missing, desc=f"making keys into {directory}", unit="key") as progress:
        fill_key_cache(directory, machines, workers=workers, on_key=lambda index: progress.update(1))
    cpu = cpu_seconds_of_children() + own_cpu_seconds() - cpu
    print(
        f"key cache {directory}: made {missing:,} RSA-2048 keys in {time.monotonic() - started:.0f} s "
        f"({cpu:.0f} s of CPU, {cpu / missing * 1000:.0f} ms each)"
    )


# --- The run -----------------------------------------------------------------------------------------------------


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl+C, so the portal is stopped and the database dropped


def start_portal(port: int, workers: int, log_path: Path) -> subprocess.Popen:
    """gunicorn over TLS as ``manage.py serve`` runs the https side (bench/_harness/)."""
    os.environ["ARC_PUBLIC_BASE_URL"] = f"https://127.0.0.1:{port}"
    return start_gunicorn(port, workers=workers, log_path=log_path, tls=True)


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    if args.key_cache is not None:
        fill_keys(args.key_cache, args.machines, args.key_workers)  # before the portal: not part of the run
    environment = throwaway_environment(BENCH_DB, script="bench/simulator.py", keep=args.keep)
    kind, tmp = environment.kind, environment.var_dir
    portal = None
    try:
        setup_django(
            ARC_HEARTBEAT_INTERVAL_SECONDS=str(max(1, round(args.interval))),
            # Offline only well after a missed beat: a Connected count below the fleet means heartbeats went missing.
            ARC_OFFLINE_AFTER_SECONDS=str(max(1500, round(3 * args.interval))),
        )
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
        children_cpu = cpu_seconds_of_children()
        portal = start_portal(port, args.web_workers, log_path)
        config = fleet_config(args, port)
        connections.close_all()  # the portal owns the database while the fleet runs
        print(
            f"{args.machines:,} machines: onboarding (at most {args.onboarding_minutes:g} min), then a timed window "
            f"of {args.minutes:g} min; heartbeat every {args.interval:g} s; {args.web_workers} gunicorn workers on "
            f"https://127.0.0.1:{port}, concurrency {args.concurrency}, "
            f"keys {'from ' + str(args.key_cache) if args.key_cache else 'made during onboarding'}; "
            f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        stats, snapshots = run_fleet(config, portal)
        stop_gunicorn(portal)
        portal_cpu = cpu_seconds_of_children() - children_cpu
        timeouts = log_path.read_text(errors="replace").count("WORKER TIMEOUT") if log_path.exists() else 0
        report(args, stats, snapshots, portal_cpu=portal_cpu, worker_timeouts=timeouts)
    finally:
        if portal is not None:
            stop_gunicorn(portal)
        if args.keep:
            print(f"kept {os.environ['DATABASE_URL']} and {tmp}")
        environment.cleanup()


def fleet_config(args: argparse.Namespace, port: int):
    from django.conf import settings

    from identity.models import Role
    from identity.pki import CA_FILE
    from identity.selectors import tenant_get
    from identity.service_principals import service_principal_create
    from machines.selectors import subscription_list
    from machines.services import resource_group_create
    from simulator.config import FleetConfig

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
        onboarding_timeout=args.onboarding_minutes * 60,
        interval=args.interval,
        concurrency=args.concurrency,
        name_prefix="bench",
        key_workers=args.key_workers,
        key_dir=str(args.key_cache) if args.key_cache is not None else None,
        seed=42,
    )


def run_fleet(config, portal: subprocess.Popen):
    """The fleet, with a progress bar while it onboards and a line a minute; returns its stats and the CPU/load
    snapshots at the start of the run, at the start of the timed window and at its end."""
    from tqdm import tqdm

    from simulator.fleet import FleetSimulation

    progress = tqdm(total=config.machines, desc="onboarding", unit="machine", mininterval=1.0)
    snapshots = {"start": CpuSnapshot.take(portal)}

    def onboarded(machine) -> None:
        progress.update(1)
        if progress.n >= config.machines:
            progress.close()

    def window_started() -> None:
        progress.close()
        snapshots["window"] = CpuSnapshot.take(portal)
        tqdm.write(
            f"  fleet onboarded after {snapshots['window'].at - snapshots['start'].at:.0f} s: timed window starts"
        )

    async def fleet():
        simulation = FleetSimulation(config, on_onboarded=onboarded, on_window_start=window_started)

        async def every_minute():
            while True:
                await asyncio.sleep(60)
                stats, window = simulation.stats, simulation.stats.window
                line = (
                    f"  {time.time() - stats.started_at:5.0f} s: {stats.onboarded:,} onboarded, "
                    f"{stats.heartbeats_sent:,} heartbeats sent, {stats.heartbeats_accepted:,} accepted, "
                    f"{stats.rejected} rejected, {sum(stats.heartbeat_errors.values())} without answer"
                )
                if window is not None and stats.window_started_at:
                    line += f"; window: {window.sent:,} sent, {window.accepted:,} accepted"
                tqdm.write(line + f"; load {os.getloadavg()[0]:.1f}")

        ticker = asyncio.ensure_future(every_minute())
        try:
            return await simulation.run()
        finally:
            ticker.cancel()
            snapshots["end"] = CpuSnapshot.take(portal)

    try:
        return asyncio.run(fleet()), snapshots
    finally:
        progress.close()


def _round_trips(label: str, counters) -> str:
    figures = counters.round_trip_ms()
    if not figures:
        return f"heartbeat round trip, {label}: none answered"
    return f"heartbeat round trip, {label} ({len(counters.round_trips):,}; TLS handshake included): " + ", ".join(
        f"{name} {ms:,.1f} ms" for name, ms in figures.items()
    )


def _cpu_line(label: str, figures: dict) -> str:
    seconds = figures["seconds"]
    parts = [f"{label} ({seconds:.0f} s):"]
    if figures["server"] is not None:
        parts.append(f"portal (gunicorn) {figures['server']:.0f} s of CPU ({figures['server'] / seconds:.2f} CPUs),")
    parts.append(f"simulator {figures['own']:.0f} s ({figures['own'] / seconds:.2f} CPUs),")
    if figures["busy"] is not None:
        parts.append(f"whole box {figures['busy'] * 100:.0f}% busy")
    return " ".join(parts)


def report(args: argparse.Namespace, stats, snapshots: dict, *, portal_cpu: float, worker_timeouts: int) -> None:
    from django.db.models import Count
    from django.utils import timezone

    from machines.heartbeats import heartbeat_flush

    heartbeat_flush()  # heartbeats still buffered in Redis (REDIS_URL), so the database below is complete

    from machines.conf import status_thresholds
    from machines.models import Machine, MachineStatusEvent
    from machines.status import derive_status
    from simulator.stats import HeartbeatCounters

    print()
    for line in stats.summary_lines():
        print(line)
    elapsed = stats.finished_at - stats.started_at
    window = stats.window if stats.window_started_at else None

    print()
    print(
        f"ONBOARDING: {stats.onboarded:,} machines in {stats.onboarding_seconds:.1f} s "
        f"({stats.onboarded / max(stats.onboarding_seconds, 0.001):.1f} machines/s), "
        f"{sum(stats.onboarding_failures.values())} failures, {stats.not_started} not started"
    )
    offset = stats.window_started_at - stats.started_at if window else float("inf")
    before = HeartbeatCounters(
        sent=stats.heartbeats_sent - (window.sent if window else 0),
        accepted=stats.heartbeats_accepted - (window.accepted if window else 0),
        rejected=stats.heartbeats_rejected - (window.rejected if window else Counter()),
        round_trips=[seconds for sent_at, seconds in stats.heartbeat_timings if sent_at < offset],
    )
    print(
        f"  heartbeats meanwhile: {before.sent:,} sent, {before.accepted:,} accepted, "
        f"{before.rejected_total} rejected, {before.lost} lost"
    )
    if "window" in snapshots:
        print("  " + _cpu_line("CPU while onboarding", snapshots["start"].until(snapshots["window"])))
        print(f"  load average when the window started: {' '.join(f'{x:.1f}' for x in snapshots['window'].load)}")
    if window is not None:
        print()
        print(
            f"TIMED WINDOW: {stats.window_seconds:.1f} s; heartbeats {window.sent:,} sent, {window.accepted:,} "
            f"accepted, {window.rejected_total} rejected, {window.lost} lost "
            f"({window.sent / max(stats.window_seconds, 1):.1f} heartbeats/s)"
        )
        if window.rejected:
            print("  rejected by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(window.rejected.items())))
        if window.errors:
            print("  without an answer: " + ", ".join(f"{k}: {v}" for k, v in sorted(window.errors.items())))
        print("  " + _round_trips("in the window", window))
        waits = window.slot_wait_ms()
        print(
            f"  waits for one of the {args.concurrency} request slots before sending (the simulator's own queue): "
            + ", ".join(f"{name} {ms:,.1f} ms" for name, ms in waits.items())
        )
        print("  " + _cpu_line("CPU in the window", snapshots["window"].until(snapshots["end"])))
        print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in snapshots['end'].load)}")
        per_machine = [m.window_heartbeats_accepted for m in stats.machines if m.onboarded and m.stays_online]
        if per_machine:
            # A machine beats 0.9–1.0 × the interval after the previous answer came back.
            typical = stats.window_seconds / (0.95 * args.interval + window.round_trip_ms().get("p50", 0) / 1000)
            print(
                f"  heartbeats accepted per heartbeating machine in the window: min {min(per_machine)}, "
                f"median {statistics.median(per_machine):g}, max {max(per_machine)} (about {typical:.1f} expected)"
            )
    print()
    print(f"portal CPU over the whole run (gunicorn master and workers): {portal_cpu:.1f} s in {elapsed:.0f} s")
    print(f"gunicorn worker timeouts: {worker_timeouts}")

    now = timezone.now()
    thresholds = status_thresholds()
    machines = list(Machine.objects.filter(resource_group__name="bench-fleet"))
    derived = Counter(
        derive_status(last_heartbeat_at=m.last_heartbeat_at, now=now, thresholds=thresholds) for m in machines
    )
    # A heartbeating machine that onboarded early enough to owe a beat in the last 1.5 intervals (+30 s) but whose
    # last beat is older missed one. Machines onboarded later than that are counted apart.
    late_window = 1.5 * args.interval + 30
    owing = {
        m.vm_id for m in stats.machines if m.onboarded and m.stays_online and m.onboarded_after <= elapsed - late_window
    }
    late = [
        m
        for m in machines
        if str(m.vm_id) in owing
        and (m.last_heartbeat_at is None or m.last_heartbeat_at < now - timedelta(seconds=late_window))
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
            f"  heartbeats accepted per heartbeating machine over the whole run: min {min(per_machine)}, "
            f"median {statistics.median(per_machine):g}, max {max(per_machine)}"
        )
    counted = window if window is not None else stats
    rejected = window.rejected_total if window is not None else stats.rejected
    goal = (
        window is not None
        and rejected == 0
        and counted.lost == 0
        and not stats.onboarding_failures
        and not stats.not_started
        and not late
    )
    print(
        "\ngoal (every machine onboarded; in the timed window 0 rejected, 0 lost; every machine on time): "
        + ("met" if goal else "NOT met")
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: the portal was stopped and the bench database dropped")
