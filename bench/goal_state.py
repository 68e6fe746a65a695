"""Goal-state polling benchmark (issue 12 item 5): what the goal-state channel costs the portal per machine-hour,
compared with the heartbeat's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432 REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/goal_state.py [--machines 200] [--requests 1500] [--rounds 3]

A throwaway PostgreSQL database ``arc_extplane_bench_gs`` (``ARC_BENCH_DATABASE`` overrides; dropped at the end) and
a temporary ARC_VAR_DIR (bench/_harness.py). ``--machines`` machines are seeded Connected, each with a certificate
for its key and one installed CustomScript extension (reported, so its goal state lists it without secrets: the
steady state of a machine with an extension). gunicorn (``--web-workers`` sync workers, plain http: production
terminates TLS in a proxy) answers, in ``--rounds`` interleaved rounds:

1. **heartbeat** — ``POST /his/machines/{vmId}/heartbeat`` (Redis-buffered, flushed every 2 s by this process).
2. **goal state 304** — ``GET …/goalstate`` with ``If-None-Match`` = the current etag: what an agent's poll costs
   while nothing changes (almost every poll).
3. **goal state 200** — the same without ``If-None-Match``: the full body (an agent's first poll, or after a change).

Every request carries its own machine JWT made with the agent's protocol module (request-bound for the goal state,
unique jti) and is fired back to back by a separate load-generator process (``bench/_heartbeat_load.py``). Time is
scaled: instead of waiting 30 s between one machine's polls, the bench measures the portal CPU (gunicorn workers +
the database's PostgreSQL backends + Redis) per answered request under load and multiplies by the requests a machine
makes per hour at the default intervals (``ARC_GOAL_STATE_SECONDS`` 30 → 120 polls; ``ARC_HEARTBEAT_INTERVAL_SECONDS``
300 → 12 heartbeats). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from statistics import median

from _harness import (
    free_port,
    raise_keyboard_interrupt_on_sigterm,
    setup_django,
    start_gunicorn,
    stop_gunicorn,
    throwaway_environment,
)
from _harness.seeding import seed_connected_fleet
from _heartbeat_load import CpuMeter, FlushLoop, cpu_per_request, fire, presign

BENCH_DB = "arc_extplane_bench_gs"
PORTAL_KINDS = ("gunicorn", "postgres", "redis")  # the flush loop is beat's work: counted for heartbeats only


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=200, help="seeded machines (default 200)")
    parser.add_argument("--keys", type=int, default=8, help="RSA keys shared round robin (default 8)")
    parser.add_argument("--requests", type=int, default=1500, help="requests per phase per round (default 1500)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a phase at most (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three phases (default 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections in flight (default 16)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    args = parser.parse_args()
    if min(args.machines, args.keys, args.requests, args.rounds, args.concurrency, args.web_workers) < 1:
        parser.error("every count must be positive")
    return args


def seed(machines: int, keys: int):
    """Connected machines with certificates and one installed (reported) CustomScript extension each."""
    from machines.models import Extension, Machine

    pool, fleet, group = seed_connected_fleet(machines, keys, group="rg-bench-gs", prefix="gs")
    Extension.objects.bulk_create(
        [
            Extension(
                machine=machine, name="CustomScript", location="westeurope", publisher="Microsoft.Azure.Extensions",
                type="CustomScript", type_handler_version="2.1", settings={"commandToExecute": "echo hi"},
                provisioning_state="Succeeded", sequence=1, operation="install", reported_sequence=1,
            )
            for machine in Machine.objects.filter(resource_group=group)
        ],
        batch_size=1000,
    )  # fmt: skip
    return pool, fleet


def goal_state_requests(pool, fleet, count: int, host: str, *, conditional: bool) -> list[bytes]:
    """``count`` signed ``GET …/goalstate`` requests, round robin over the fleet (with the current etag when
    ``conditional``)."""
    from azcmagent import protocol

    from machines.goalstate import goal_state_etag
    from machines.models import Machine

    etags = {}
    if conditional:
        ids = dict(Machine.objects.filter(vm_id__in=[f[0] for f in fleet]).values_list("vm_id", "pk"))
        etags = {str(vm): goal_state_etag(machine_id=pk) for vm, pk in ids.items()}
    requests = []
    for index in range(count):
        vm_id, key, thumbprint = fleet[index % len(fleet)]
        path = protocol.goal_state_path(vm_id)
        token = protocol.request_token(pool[key], thumbprint=thumbprint, vm_id=vm_id, method="GET", path=path)
        extra = f"If-None-Match: {etags[vm_id]}\r\n" if conditional else ""
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n{extra}Connection: close\r\n\r\n"
        )
        requests.append(head.encode())
    return requests


def answered(result: dict, status: int) -> dict:
    """``fire`` counts 200s; a conditional poll answers 304."""
    result["ok"] = result["statuses"].get(status, 0)
    result["rate"] = result["ok"] / result["elapsed"] if result["elapsed"] else 0.0
    return result


def main() -> None:
    args = parse_args()
    raise_keyboard_interrupt_on_sigterm()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/goal_state.py needs REDIS_URL (e.g. redis://127.0.0.1:6379/3)")
    environment = throwaway_environment(BENCH_DB, script="bench/goal_state.py", postgres_only=True)
    portal = flusher = None
    try:
        setup_django(ARC_HEARTBEAT_FLUSH_SECONDS="2")
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        call_command("bootstrap", stdout=open(os.devnull, "w"))  # noqa: SIM115 - discarded output
        started = time.perf_counter()
        pool, fleet = seed(args.machines, args.keys)
        print(f"seeded {len(fleet):,} machines with an extension each in {time.perf_counter() - started:.1f} s")
        port = free_port()
        host = f"127.0.0.1:{port}"
        portal = start_gunicorn(
            port, workers=args.web_workers, log_path=environment.var_dir / "gunicorn.log", settle_seconds=1.0
        )
        fire(port, goal_state_requests(pool, fleet, 200, host, conditional=False), args.concurrency, 5)  # warm-up
        flusher = FlushLoop()
        flusher.start()
        meter = CpuMeter(portal.pid, os.environ["REDIS_URL"], environment.database)
        rounds = []
        for number in range(1, args.rounds + 1):
            heartbeats = presign(pool, fleet, args.requests, host)
            unchanged = goal_state_requests(pool, fleet, args.requests, host, conditional=True)
            full = goal_state_requests(pool, fleet, args.requests, host, conditional=False)
            result = {
                "heartbeat": answered(fire(port, heartbeats, args.concurrency, args.seconds, meter), 200),
                "goal state 304": answered(fire(port, unchanged, args.concurrency, args.seconds, meter), 304),
                "goal state 200": answered(fire(port, full, args.concurrency, args.seconds, meter), 200),
            }
            rounds.append(result)
            print(
                f"round {number}: "
                + "; ".join(
                    f"{name} {r['rate']:.0f} req/s ({r['ok']:,} answered, other: "
                    f"{ {k: v for k, v in r['statuses'].items() if k not in (200, 304)} or 'none' })"
                    for name, r in result.items()
                )
            )
        flusher.stop.set()
        flusher.join(timeout=30)
        connections.close_all()

        per_hour = {
            "heartbeat": 3600 / settings.ARC_HEARTBEAT_INTERVAL_SECONDS,
            "goal state 304": 3600 / settings.ARC_GOAL_STATE_SECONDS,
            "goal state 200": 3600 / settings.ARC_GOAL_STATE_SECONDS,
        }
        figures = {}
        for name in per_hour:
            parts = cpu_per_request([r[name] for r in rounds])
            portal_ms = sum(parts[k] for k in PORTAL_KINDS) + (parts["flush loop"] if name == "heartbeat" else 0.0)
            figures[name] = portal_ms
            detail = ", ".join(f"{kind} {parts[kind]:.2f}" for kind in (*PORTAL_KINDS, "flush loop"))
            rate = median([r[name]["rate"] for r in rounds])
            print(
                f"{name:15s} {rate:6.0f} req/s (median); portal CPU {portal_ms:5.2f} ms per request ({detail}); "
                f"{per_hour[name]:.0f} per machine-hour → {portal_ms * per_hour[name] / 1000:.3f} CPU-s per "
                "machine-hour"
            )
        heartbeat_hour = figures["heartbeat"] * per_hour["heartbeat"]
        polling_hour = figures["goal state 304"] * per_hour["goal state 304"]
        print(
            f"per machine-hour at the defaults: goal-state polling (unchanged, 304) {polling_hour / 1000:.3f} CPU-s "
            f"vs heartbeats {heartbeat_hour / 1000:.3f} CPU-s → {polling_hour / heartbeat_hour:.1f}× the heartbeat's; "
            f"a fleet of 1,000 machines polls {1000 * per_hour['goal state 304'] / 3600:.1f}/s and needs "
            f"{1000 * polling_hour / 3600 / 1000:.3f} CPUs for it"
        )
        print(
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, gunicorn {args.web_workers} sync workers, plain http, "
            f"{args.concurrency} connections; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}))
    finally:
        if flusher is not None:
            flusher.stop.set()
        if portal is not None:
            stop_gunicorn(portal)
        environment.cleanup()


if __name__ == "__main__":
    main()
