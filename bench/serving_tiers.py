"""Serving tiers side by side, in one run on this box (issue 15 item 1).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432 REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/serving_tiers.py \\
        [--tiers sync,gthread,granian-wsgi,granian,nginx-gthread,nginx-granian] \\
        [--rounds 3] [--seconds 8] [--rate 175] [--rate-seconds 20] [--slow-clients 200] [--write-docs]

One throwaway portal (PostgreSQL database ``--database``, default ``arcportal_bench_serving``, made and dropped
here; Redis as cache and heartbeat buffer; a temporary ARC_VAR_DIR with the portal's PKI) and ``--machines``
machines recorded Connected, each with a certificate. Then, for each round and each tier in turn (the order
rotates, so a drift of the shared box moves every tier alike), the tier is started on free 127.0.0.1 ports with
``--workers`` processes (and ``--threads`` threads where it has threads) and measured:

* **bare** — ``POST /his/bench/baseline`` (a bare Django JSON view of a bench-only URLconf, the same middleware)
  from ``--concurrency`` clients as fast as it answers; **heartbeat** — signed heartbeats the same way
  (the production path: one Redis round trip, flushed by this process every 2 s as beat does); their ratio;
* **CPU per request** — user + system CPU of the tier's processes (the server's tree; nginx's master and workers
  too) from ``/proc``, per answered request, TLS included;
* **heartbeat latency at ``--rate``/s** — one heartbeat every 1/rate s whatever the answers (open loop), the
  latency counted from when it was due;
* **/healthz under slow clients** — ``--slow-clients`` connections each hold a half-sent request (half stop in the
  headers, half in the body; one byte every 2 s) while ``/healthz`` is asked one request after another.

Every request is what an agent sends: HTTP/1.1 on a new TLS connection (full handshake, ``Connection: close``) to
the tier's https port. Load comes from a separate process (its CPU reported apart). Figures are printed, never
asserted; ``--write-docs`` puts the table into docs/performance.md. On a busy box only the CPU per request
means much: say so next to any figure taken there.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import loadgen as _loadgen
from _harness.seeding import seed_connected_fleet
from _harness.serving import DEFAULT_TIERS, ROOT, TIERS, CpuMeter, Portal, box_busy, start_tier


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiers", default=",".join(DEFAULT_TIERS), help=f"of {', '.join(TIERS)}")
    parser.add_argument("--database", default="arcportal_bench_serving", help="throwaway database name")
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--keys", type=int, default=16, help="RSA keys shared round robin (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="server processes per tier (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process where the server has them")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the bare and heartbeat phases")
    parser.add_argument("--requests", type=int, default=8000, help="requests per closed-loop phase at most")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop clients (default 32)")
    parser.add_argument("--rate", type=float, default=175.0, help="heartbeats/s of the latency phase (default 175)")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--slow-clients", type=int, default=200)
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args(argv)
    args.tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    unknown = [t for t in args.tiers if t not in TIERS]
    if unknown or not args.tiers:
        parser.error(f"unknown tiers {unknown}; choose from {', '.join(TIERS)}")
    counts = (args.machines, args.keys, args.workers, args.threads, args.rounds, args.requests, args.concurrency)
    if min(counts) < 1 or min(args.seconds, args.rate, args.rate_seconds, args.slow_seconds) <= 0:
        parser.error("every count and duration must be positive")
    return args


class FlushLoop(threading.Thread):
    """What beat's ``machine-heartbeat-flush`` entry does: ``heartbeat_flush()`` every 2 s (its CPU is not the
    tier's)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from machines.heartbeats import heartbeat_flush

        try:
            while not self.halt.wait(2.0):
                heartbeat_flush()
        finally:
            connection.close()


def measure(tier, args, pool, fleet, ca_file: str) -> dict:
    """Every figure of one tier, once."""
    host = f"127.0.0.1:{tier.port}"
    meter = CpuMeter(tier.roots)
    bare = [_loadgen.request_bytes("/his/bench/baseline", host, b'{"a": 1}')] * args.requests
    timeout = max(args.seconds, args.rate_seconds, args.slow_seconds) + 120
    _loadgen.in_child(_loadgen.closed_loop, tier.port, ca_file, bare[:300], 8, 30.0, timeout=timeout)  # warm-up
    result: dict = {}
    for phase, requests in (("bare", bare), ("heartbeat", _loadgen.presign(pool, fleet, args.requests, host))):
        before = meter.sample()
        run = _loadgen.in_child(
            _loadgen.closed_loop, tier.port, ca_file, requests, args.concurrency, args.seconds, timeout=timeout
        )
        run["tier_cpu"] = CpuMeter.spent(before, meter.sample())
        run["rate"] = run["ok"] / run["elapsed"] if run["elapsed"] else 0.0
        result[phase] = run
    signed = _loadgen.presign(pool, fleet, int(args.rate * args.rate_seconds), host)
    before = meter.sample()
    run = _loadgen.in_child(
        _loadgen.fixed_rate, tier.port, ca_file, signed, args.rate, args.rate_seconds, timeout=timeout
    )
    run["tier_cpu"] = CpuMeter.spent(before, meter.sample())
    result["rate"] = run
    result["slow"] = _loadgen.in_child(
        _loadgen.slow_clients, tier.port, ca_file, args.slow_clients, args.slow_seconds, timeout=timeout
    )
    return result


def line(key: str, r: dict) -> str:
    bare, hb, rate, slow = r["bare"], r["heartbeat"], r["rate"], r["slow"]
    notes = []
    for name, run in (("bare", bare), ("heartbeat", hb), ("rate", rate)):
        others = {k: v for k, v in run["statuses"].items() if k != 200}
        if others or run["errors"]:
            notes.append(f"{name}: {others or ''} {run['errors'] or ''}".strip())
    ratio = hb["rate"] / max(bare["rate"], 1e-9)
    return (
        f"{key:14s} bare {bare['rate']:6.0f}/s  heartbeat {hb['rate']:6.0f}/s  ratio {ratio:.2f}  "
        f"CPU/hb {hb['tier_cpu'] * 1000 / max(hb['ok'], 1):.2f} ms  at {rate['sent'] / rate['elapsed']:.0f}/s p99 "
        f"{rate['latency_ms']['p99']:.0f} ms  /healthz with {slow['connected']} slow clients p99 "
        f"{slow['latency_ms']['p99']:.0f} ms, max {slow['latency_ms']['max']:.0f} ms, failures {slow['failures'] or 0}"
        + (f"  [{'; '.join(notes)}]" if notes else "")
    )


def summarize(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Medians over the rounds, per tier."""
    table = {}
    for key, rounds in results.items():

        def med(get, rounds=rounds):
            return median(get(r) for r in rounds)

        table[key] = {
            "bare": med(lambda r: r["bare"]["rate"]),
            "heartbeat": med(lambda r: r["heartbeat"]["rate"]),
            "ratio": med(lambda r: r["heartbeat"]["rate"] / max(r["bare"]["rate"], 1e-9)),
            "cpu_bare": med(lambda r: r["bare"]["tier_cpu"] * 1000 / max(r["bare"]["ok"], 1)),
            "cpu_hb": med(lambda r: r["heartbeat"]["tier_cpu"] * 1000 / max(r["heartbeat"]["ok"], 1)),
            "cpu_hb_rate": med(lambda r: r["rate"]["tier_cpu"] * 1000 / max(r["rate"]["ok"], 1)),
            "rate_p50": med(lambda r: r["rate"]["latency_ms"]["p50"]),
            "rate_p99": med(lambda r: r["rate"]["latency_ms"]["p99"]),
            "rate_failed": sum(r["rate"]["sent"] - r["rate"]["ok"] for r in rounds),
            "rate_sent": sum(r["rate"]["sent"] for r in rounds),
            "slow_connected": min(r["slow"]["connected"] for r in rounds),
            "healthz_p50": med(lambda r: r["slow"]["latency_ms"]["p50"]),
            "healthz_p99": med(lambda r: r["slow"]["latency_ms"]["p99"]),
            "healthz_max": max(r["slow"]["latency_ms"]["max"] for r in rounds),
            "healthz_failed": sum(sum(r["slow"]["failures"].values()) for r in rounds),
            "healthz_probes": sum(r["slow"]["probes"] for r in rounds),
            "load_cpu_hb": med(lambda r: r["heartbeat"]["cpu"] * 1000 / max(r["heartbeat"]["ok"], 1)),
        }
    return table


def table_lines(args, table: dict[str, dict]) -> list[str]:
    threads = f", {args.threads} threads each where threaded" if args.threads > 1 else ""
    lines = [
        f"| tier ({args.workers} processes{threads}) | bare view req/s | heartbeat req/s | ratio "
        "| CPU ms/heartbeat (saturated / at rate) | CPU ms/bare request "
        f"| heartbeat p50 / p99 at {args.rate:g}/s (failed) "
        f"| /healthz p50 / p99 / max with {args.slow_clients} slow clients (failed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, row in table.items():
        lines.append(
            f"| {TIERS[key].label} | {row['bare']:,.0f} | {row['heartbeat']:,.0f} | {row['ratio']:.2f}× | "
            f"{row['cpu_hb']:.2f} / {row['cpu_hb_rate']:.2f} | {row['cpu_bare']:.2f} | "
            f"{row['rate_p50']:,.0f} / {row['rate_p99']:,.0f} ms ({row['rate_failed']} of {row['rate_sent']:,}) | "
            f"{row['healthz_p50']:,.0f} / {row['healthz_p99']:,.0f} / {row['healthz_max']:,.0f} ms "
            f"({row['healthz_failed']} of {row['healthz_probes']:,}; {row['slow_connected']} slow clients connected) |"
        )
    return lines


def main() -> None:
    args = parse_args()
    portal = Portal(args.database)
    portal.create()
    tiers_started = []
    flusher = None
    try:
        portal.setup_django()
        portal.migrate_and_bootstrap()
        pool, fleet, _ = seed_connected_fleet(
            args.machines, args.keys, group="rg-bench-serving", prefix="srv", facts=_loadgen.BODY
        )
        from django.db import connections

        connections.close_all()
        ca_file = str(portal.pki / "ca.pem")
        logs = portal.tmp / "logs"
        logs.mkdir()
        flusher = FlushLoop()
        flusher.start()
        load_start, busy_start = os.getloadavg(), box_busy()
        print(f"{len(fleet):,} machines seeded; tiers {', '.join(args.tiers)}; load average {load_start}")
        results: dict[str, list[dict]] = {key: [] for key in args.tiers}
        for number in range(args.rounds):
            order = args.tiers[number % len(args.tiers) :] + args.tiers[: number % len(args.tiers)]
            for key in order:
                tier = start_tier(TIERS[key], portal, workers=args.workers, threads=args.threads, logs=logs)
                tiers_started.append(tier)
                try:
                    result = measure(tier, args, pool, fleet, ca_file)
                finally:
                    tier.stop()
                    tiers_started.remove(tier)
                results[key].append(result)
                print(f"round {number + 1}: {line(key, result)}", flush=True)
        busy_end = box_busy()
        busy = (busy_end[0] - busy_start[0]) / max(1, busy_end[1] - busy_start[1])
        table = summarize(results)
        lines = table_lines(args, table)
        print("\n" + "\n".join(lines))
        facts = (
            f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
            f"{nginx_version()}, load average {' / '.join(f'{x:.1f}' for x in load_start)} at the start and "
            f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end, the box {busy * 100:.0f}% busy "
            f"over the run; {args.rounds} rounds, phases of {args.seconds:g} s, {args.concurrency} clients, "
            f"{args.machines} machines"
        )
        print(facts)
        if args.write_docs:
            write_docs(args, lines, facts)
    finally:
        for tier in tiers_started:
            tier.stop()
        if flusher is not None:
            flusher.halt.set()
            flusher.join(timeout=10)
        portal.drop()


def nginx_version() -> str:
    import subprocess

    from deploy.nginx import NGINX

    found = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    return found.stderr.strip().replace("nginx version: ", "") or "nginx ?"


DOCS_BEGIN = "<!-- generated by bench/serving_tiers.py --write-docs: begin -->"
DOCS_END = "<!-- generated by bench/serving_tiers.py --write-docs: end -->"


def write_docs(args, lines: list[str], facts: str) -> None:
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join(
        [
            DOCS_BEGIN,
            "",
            f"Run of {stamp}, commit {commit.stdout.strip()}; medians over the rounds.",
            "",
            *lines,
            "",
            f"Machine: {facts}.",
            "",
            DOCS_END,
        ]
    )
    path = ROOT / "docs" / "performance.md"
    text = path.read_text()
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote the table into {path}")


if __name__ == "__main__":
    main()
