"""Heartbeat ingest benchmark (issue 6 item 7): signed heartbeats/s through gunicorn vs a bare Django JSON view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432 REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/heartbeat_ingest.py [--machines 500] [--rounds 5] [--seconds 6] [--write-docs]

``--write-docs`` replaces the generated block of the "Heartbeat ingest" section of docs/performance.md with the
run's figures.

It creates a throwaway PostgreSQL database ``arcportal_bench_hb`` (dropped at the end; the URL's own database is
never touched) and a temporary ARC_VAR_DIR (PKI), migrates, bootstraps, and seeds ``--machines`` machines recorded
Connected, each with an identity certificate issued by the portal CA for its key (``--keys`` RSA keys shared round
robin: key generation is not what is measured). Then, in one run, four phases against ``gunicorn`` with
``--web-workers`` sync workers on 127.0.0.1; the first three run in turn for ``--rounds`` rounds on one gunicorn
(the box is shared, so its speed drifts: each round's ratio compares phases that ran seconds apart, and the
figures printed are medians over the rounds):

1. **baseline** — ``POST /his/bench/baseline``: a bare Django JSON view, mounted only by a bench URLconf written
   to the temporary directory (``ROOT_URLCONF`` override; production never has it), same middleware, same body.
2. **auth-only** — ``POST /his/bench/auth-only/{vmId}`` (same bench URLconf): the heartbeat endpoint's checks
   (load the machine, verify the signed JWT, parse the facts) without recording anything (the replay check is
   part of the recording round trip): what the checks alone cost.
3. **buffered** — ``POST /his/machines/{vmId}/heartbeat`` with REDIS_URL set: the production write path
   (``machines/heartbeats.py``), pending heartbeats flushed by a thread of this bench every 2 s (the beat entry's
   job; a request flushes inline if a flush is overdue).
4. **direct** — the same endpoint with ``ARC_HEARTBEAT_FLUSH_SECONDS=0``: one UPDATE per heartbeat (the old path).

Every heartbeat is pre-signed with the agent's own helper (``azcmagent.identity.heartbeat_token``, unique jti) and
fired by a separate load-generator process (asyncio, raw HTTP/1.1, ``--concurrency`` connections); a phase stops
after ``--requests`` requests or ``--seconds`` seconds, whichever comes first. Plain http: gunicorn's sync workers
close every connection, so TLS would measure one handshake per request, and production terminates TLS in a proxy
(DESIGN.md §1). Figures are printed, never asserted. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from statistics import median

from _harness import (
    ROOT,
    free_port,
    raise_keyboard_interrupt_on_sigterm,
    setup_django,
    start_gunicorn,
    stop_gunicorn,
    throwaway_environment,
)
from _harness.seeding import seed_connected_fleet
from _heartbeat_load import BODY, CpuMeter, FlushLoop, _request, cpu_per_request, fire, presign

BENCH_DB = "arcportal_bench_hb"
GOAL = 0.6

BENCH_URLS = '''"""Bench-only URLconf: the project's URLs plus a bare JSON view (bench/heartbeat_ingest.py)."""
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from arcportal.urls import urlpatterns as project_urlpatterns


@csrf_exempt
@require_POST
def baseline(request):
    return JsonResponse({"status": "Connected", "nextHeartbeatSeconds": 300})


@csrf_exempt
@require_POST
def auth_only(request, vm_id):
    """The heartbeat endpoint's checks without recording: load the machine, verify the JWT, parse the facts (the
    replay check is part of the recording round trip, so it is not here)."""
    import json

    from django.utils import timezone

    from agentplane.auth import bearer_token, verify_heartbeat
    from machines.heartbeat_facts import machine_heartbeat_facts
    from machines import heartbeat_reads

    machine = heartbeat_reads.machine_for_heartbeat(vm_id=vm_id)
    verify_heartbeat(machine=machine, token=bearer_token(request), body=request.body, vm_id=vm_id, now=timezone.now())
    machine_heartbeat_facts(json.loads(request.body))
    return JsonResponse({"status": machine.status, "nextHeartbeatSeconds": 300})


urlpatterns = [
    path("his/bench/baseline", baseline),
    path("his/bench/auth-only/<str:vm_id>", auth_only),
    *project_urlpatterns,
]
'''
BENCH_SETTINGS = """from arcportal.settings import *  # noqa: F403

ROOT_URLCONF = "bench_hb_urls"
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=500, help="seeded machines (default 500)")
    parser.add_argument("--keys", type=int, default=16, help="RSA keys shared round robin (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of baseline/auth-only/buffered (default 5)")
    parser.add_argument("--requests", type=int, default=6000, help="requests per phase per round at most (6000)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of a phase per round at most (6)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in flight (default 32)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--write-docs", action="store_true", help="append the figures to docs/performance.md")
    args = parser.parse_args()
    if min(args.machines, args.keys, args.requests, args.concurrency, args.web_workers, args.rounds) < 1 or (
        args.seconds <= 0
    ):
        parser.error("every count must be positive")
    return args


# --- Environment, database, Django ------------------------------------------------------------------------------


def prepare_environment():
    """The throwaway PostgreSQL database and var directory (bench/_harness/), with the bench URLconf beside them."""
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/heartbeat_ingest.py needs REDIS_URL (e.g. redis://127.0.0.1:6379/11)")
    environment = throwaway_environment(BENCH_DB, script="bench/heartbeat_ingest.py", postgres_only=True)
    (environment.var_dir / "bench_hb_urls.py").write_text(BENCH_URLS)
    (environment.var_dir / "bench_hb_settings.py").write_text(BENCH_SETTINGS)
    return environment


# --- The run ------------------------------------------------------------------------------------------------------


def phase(name: str, result: dict) -> str:
    others = {k: v for k, v in result["statuses"].items() if k != 200}
    notes = (f", other answers: {others}" if others else "") + (
        f", errors: {result['errors']}" if result["errors"] else ""
    )
    return f"{name:9s} {result['rate']:8.0f} req/s  ({result['ok']:,} × 200 in {result['elapsed']:.1f} s{notes})"


def main() -> None:
    args = parse_args()
    raise_keyboard_interrupt_on_sigterm()
    environment = prepare_environment()
    tmp = environment.var_dir
    portal = None
    flusher = None
    try:
        setup_django(ARC_HEARTBEAT_FLUSH_SECONDS="2")
        from django.core.management import call_command
        from django.db import connection, connections
        from django.utils import timezone

        from machines.heartbeats import heartbeat_flush
        from machines.models import Machine

        call_command("migrate", verbosity=0)
        call_command("bootstrap", stdout=open(os.devnull, "w"))  # noqa: SIM115 - discarded output
        started = time.perf_counter()
        pool, fleet, _ = seed_connected_fleet(args.machines, args.keys, group="rg-bench-hb", prefix="hb", facts=BODY)
        connection.ensure_connection()
        pg_version = connection.connection.info.server_version
        print(f"seeded {len(fleet):,} machines ({args.keys} keys) in {time.perf_counter() - started:.1f} s")
        connections.close_all()
        port = free_port()
        host = f"127.0.0.1:{port}"
        load_start = os.getloadavg()
        body = json.dumps(BODY).encode()

        # 1.–3. baseline, auth-only and buffered, interleaved in rounds on one gunicorn (REDIS_URL set, buffering
        # on): a drift of the shared box moves all three phases of a round alike, and the ratio is taken per round.
        portal = _gunicorn(port, args.web_workers, tmp, {})
        baseline = [_request("/his/bench/baseline", host, body, "x")] * args.requests
        fire(port, baseline[:500], args.concurrency, 5)  # warm-up
        checks_only = presign(pool, fleet, args.requests, host, "/his/bench/auth-only/{vm_id}")  # no jti check
        rounds: list[dict[str, dict]] = []
        flusher = FlushLoop()
        flusher.start()
        since = timezone.now()
        meter = CpuMeter(portal.pid, os.environ["REDIS_URL"], environment.database)
        for number in range(1, args.rounds + 1):
            signed = presign(pool, fleet, args.requests, host)  # fresh jti every round
            result = {
                "baseline": fire(port, baseline, args.concurrency, args.seconds, meter),
                "auth-only": fire(port, checks_only, args.concurrency, args.seconds, meter),
                "buffered": fire(port, signed, args.concurrency, args.seconds, meter),
            }
            rounds.append(result)
            ratio = result["buffered"]["rate"] / result["baseline"]["rate"]
            print(f"round {number}: " + "; ".join(phase(n, r) for n, r in result.items()) + f"; ratio {ratio:.2f}×")
        flusher.stop.set()
        flusher.join(timeout=30)
        heartbeat_flush()
        written = Machine.objects.filter(last_heartbeat_at__gte=since).count()
        expected = min(len(fleet), sum(r["buffered"]["ok"] for r in rounds))
        connections.close_all()
        stop_gunicorn(portal)

        # 4. direct: the same endpoint writing every heartbeat at once (its own gunicorn), one block.
        portal = _gunicorn(port, args.web_workers, tmp, {"ARC_HEARTBEAT_FLUSH_SECONDS": "0"})
        signed = presign(pool, fleet, args.requests, host)
        meter = CpuMeter(portal.pid, os.environ["REDIS_URL"], environment.database)
        direct = fire(port, signed, args.concurrency, args.seconds, meter)
        stop_gunicorn(portal)
        portal = None

        figures = {name: median([r[name]["rate"] for r in rounds]) for name in ("baseline", "auth-only", "buffered")}
        figures["direct"] = direct["rate"]
        ratios = {
            name: median([r[name]["rate"] / r["baseline"]["rate"] for r in rounds])
            for name in ("auth-only", "buffered")
        }
        ratios["direct"] = figures["direct"] / figures["baseline"]
        per_round = [r["buffered"]["rate"] / r["baseline"]["rate"] for r in rounds]
        for name in ("baseline", "auth-only", "buffered"):
            print(f"{name:9s} {figures[name]:8.0f} req/s  median of {len(rounds)} rounds")
        print(phase("direct", direct))
        flush_ms = sorted(flusher.seconds)
        median_flush = flush_ms[len(flush_ms) // 2] * 1000 if flush_ms else 0.0
        print(
            f"ratio buffered/baseline {ratios['buffered']:.2f}× (median of the rounds "
            f"{', '.join(f'{x:.2f}' for x in per_round)}; goal ≥ {GOAL}×); direct/baseline {ratios['direct']:.2f}×; "
            f"auth-only/baseline {ratios['auth-only']:.2f}× (the endpoint's checks without recording)"
        )
        cpu = {name: cpu_per_request([r[name] for r in rounds]) for name in ("baseline", "auth-only", "buffered")}
        cpu["direct"] = cpu_per_request([direct])
        for name, parts in cpu.items():
            detail = ", ".join(f"{kind} {ms:.2f}" for kind, ms in parts.items())
            print(f"CPU per request, {name:9s} {sum(parts.values()):5.2f} ms ({detail})")
        cpu_times = sum(cpu["buffered"].values()) / sum(cpu["baseline"].values())
        print(f"CPU per request: a buffered heartbeat costs {cpu_times:.2f}× the bare view")
        print(
            f"flush loop: {flusher.flushes} flushes, {flusher.rows:,} pending heartbeats written, median "
            f"{median_flush:.0f} ms per flush; machines with a heartbeat from the buffered phases: {written:,} "
            f"(expected {expected:,})"
        )
        facts = (
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), PostgreSQL "
            f"{pg_version // 10000}.{pg_version % 10000}, Redis at {os.environ['REDIS_URL']}, Python "
            f"{platform.python_version()}, gunicorn {args.web_workers} sync workers over plain http, "
            f"{args.concurrency} connections from one asyncio load-generator process; load average at the start "
            f"{' / '.join(f'{x:.1f}' for x in load_start)}"
        )
        print(facts)
        if args.write_docs:
            write_docs(args, figures, ratios, per_round, cpu, flusher, median_flush, written, expected, facts)
    finally:
        if flusher is not None:
            flusher.stop.set()
        if portal is not None:
            stop_gunicorn(portal)
        environment.cleanup()


def _gunicorn(port: int, workers: int, tmp, env: dict[str, str]):
    """The bench's gunicorn: plain http (production terminates TLS in a proxy), the bench URLconf on its path."""
    env = {**env, "DJANGO_SETTINGS_MODULE": "bench_hb_settings"}
    return start_gunicorn(
        port,
        workers=workers,
        log_path=tmp / "gunicorn.log",
        env=env,
        pythonpath=[tmp],
        extra_args=["--backlog", "2048"],
        settle_seconds=1.0,
    )


DOCS_BEGIN = "<!-- generated by bench/heartbeat_ingest.py --write-docs: begin -->"
DOCS_END = "<!-- generated by bench/heartbeat_ingest.py --write-docs: end -->"


def write_docs(args, figures, ratios, per_round, cpu, flusher, median_flush, written, expected, facts) -> None:
    """Replace the generated block of docs/performance.md (between DOCS_BEGIN and DOCS_END) with this run's figures;
    the prose around it is written by hand."""
    import textwrap

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    day = datetime.now(UTC).date().isoformat()

    def prose(text: str) -> list[str]:
        return [*textwrap.wrap(text, width=116, break_on_hyphens=False, break_long_words=False), ""]

    rows = [
        ("bare JSON view (`ROOT_URLCONF` of the bench only)", "baseline"),
        ("the endpoint's checks without recording (load machine, verify JWT)", "auth-only"),
        ("heartbeat: jti + buffer in one Redis call, flushed every 2 s", "buffered"),
        ("heartbeat, one UPDATE each (`ARC_HEARTBEAT_FLUSH_SECONDS=0`)", "direct"),
    ]
    kinds = list(cpu["baseline"])
    lines = [DOCS_BEGIN, ""]
    lines += prose(
        f"Run of {day}, commit {commit.stdout.strip()}: {args.machines:,} machines, {args.rounds} rounds, each phase "
        f"at most {args.requests:,} requests or {args.seconds:g} s; req/s are medians over the rounds, each ratio "
        f"the median of the per-round ratios (direct: one block on its own gunicorn). CPU is milliseconds per "
        f"answered request, summed over the rounds, by process."
    )
    lines += [
        "| phase | req/s | vs bare view | CPU ms/request | " + " | ".join(kinds) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(kinds),
    ]
    for label, key in rows:
        parts = cpu[key]
        lines.append(
            f"| {label} | {figures[key]:,.0f} | {ratios.get(key, 1.0):.2f}× | {sum(parts.values()):.2f} | "
            + " | ".join(f"{parts[kind]:.2f}" for kind in kinds)
            + " |"
        )
    lines += [""]
    cpu_times = sum(cpu["buffered"].values()) / sum(cpu["baseline"].values())
    lines += prose(
        f"Buffered/bare per round: {', '.join(f'{x:.2f}×' for x in per_round)}. CPU per request: a buffered "
        f"heartbeat costs {cpu_times:.2f}× the bare view. Flushes: {flusher.flushes}, {flusher.rows:,} pending "
        f"heartbeats written, median {median_flush:.0f} ms per flush (drain + one UPDATE); after the last flush "
        f"{written:,} of {expected:,} machines that heartbeated had a heartbeat of the run in the database."
    )
    lines += prose(f"Machine: {facts}.")
    lines += [DOCS_END]
    block = "\n".join(lines)
    path = ROOT / "docs" / "performance.md"
    text = path.read_text()
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Heartbeat ingest\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote the figures into {path}")


if __name__ == "__main__":
    main()
