"""Benchmark: the status sweep on 1,000,000 machines against hand-written SQL doing the same work.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/arcportal_bench_sweep .venv/bin/python bench/sweep.py

Creates (and finally drops) its own database ``arcportal_bench_sweep``, migrates it, seeds one million machines
with one ``INSERT … SELECT generate_series``, then for 1,000 and for 100,000 due transitions times

* ``machine_status_sweep(now=…)`` — the product code: three steps, chunks of ``SWEEP_CHUNK`` rows, each chunk one
  CTE statement in its own transaction (claim ``FOR UPDATE SKIP LOCKED`` → UPDATE → INSERT events);
* the baseline: one hand-written statement, ``UPDATE … RETURNING`` feeding one ``INSERT`` of the events and one of
  the activity-log events, for the only step that has work (Connected → Disconnected), in one transaction.

Before each run the previous run's transitions are undone and the table is vacuumed/analysed, so both see the
same table. Figures are printed (median of ``--repeat`` runs), never asserted; ``--write-docs`` puts them in
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _harness import ROOT, setup_django, throwaway_environment

DB_NAME = "arcportal_bench_sweep"
FLEET = 1_000_000
OFFLINE = timedelta(seconds=1500)
# Heartbeat of machine number g (1-based, in id order): BASE + g ms. At now = BASE + OFFLINE + (n + 0.5) ms exactly
# machines 1..n are older than the offline threshold and every other one is fresh.
BASE = datetime(2026, 1, 1, tzinfo=UTC)

# The status change of the due machines, as one CTE (the RETURNING list carries what the activity events need).
_UPDATE_DUE = """
WITH upd AS (
    UPDATE machines_machine AS m
       SET status = 'Disconnected', last_status_change = m.last_heartbeat_at + %(offline)s::interval
      FROM machines_machine AS old
     WHERE old.id = m.id
       AND m.status IN ('AwaitingConnection', 'Connected')
       AND m.last_heartbeat_at < %(cutoff)s
 RETURNING m.id, old.status AS from_status, m.last_status_change AS at, m.resource_group_id, m.name
)"""
_INSERT_EVENTS = """
INSERT INTO machines_machinestatusevent (machine_id, from_status, to_status, at, reason, recorded_at)
SELECT id, from_status, 'Disconnected', at, 'Status sweep', now() FROM upd"""

BASELINE_SQL = _UPDATE_DUE + _INSERT_EVENTS + "\n"

# The same, plus what the product also writes per transition since issue 13: the activity-log event
# (machines/activity.py: category ResourceHealth, caller Microsoft.HybridCompute, filed under the machine's id).
BASELINE_WITH_ACTIVITY_SQL = (
    _UPDATE_DUE  # noqa: S608 - module constants only, no input
    + ", events AS ("
    + _INSERT_EVENTS
    + """
), named AS (
    SELECT upd.*, s.subscription_id::text AS sub, g.name AS group_name,
           '/subscriptions/' || s.subscription_id::text || '/resourceGroups/' || g.name
           || '/providers/Microsoft.HybridCompute/machines/' || upd.name AS rid
      FROM upd JOIN machines_resourcegroup AS g ON g.id = upd.resource_group_id
      JOIN machines_subscription AS s ON s.id = g.subscription_id
)
INSERT INTO activity_activityevent (event_data_id, operation_id, event_timestamp, operation_name, status, level,
    category, caller, caller_ip, correlation_id, resource_id, resource_key, subscription_id, resource_group,
    resource_provider, resource_type, properties, error)
SELECT gen_random_uuid(), gen_random_uuid(), at, 'Microsoft.HybridCompute/machines/status/action', 'Succeeded',
       'Warning', 'ResourceHealth', 'Microsoft.HybridCompute', '', '', rid, lower(rid), lower(sub), lower(group_name),
       'microsoft.hybridcompute', 'microsoft.hybridcompute/machines',
       jsonb_build_object('fromStatus', from_status, 'toStatus', 'Disconnected', 'reason', 'Status sweep'), NULL
  FROM named
"""
)


def machine_facts(cursor) -> dict[str, str]:
    cursor.execute("SELECT version()")
    pg_version = cursor.fetchone()[0].split(" on ")[0]
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "postgresql": pg_version,
        "python": platform.python_version(),
        "load": "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()),
    }


def seed(cursor, fleet: int) -> None:
    """One INSERT … SELECT over generate_series: every NOT NULL column of the machine row, in one statement."""
    from identity.models import Tenant
    from machines.models import Machine, ResourceGroup, Subscription

    tenant = Tenant.objects.create()
    subscription = Subscription.objects.create(tenant=tenant, display_name="Bench")
    group = ResourceGroup.objects.create(subscription=subscription, name="rg-bench", location="westeurope")
    columns, values = [], []
    for field in Machine._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name == "resource_group":
            values.append(str(group.pk))
        elif field.name == "name":
            values.append("'srv-' || lpad(g::text, 7, '0')")
        elif field.name == "location":
            values.append("'westeurope'")
        elif field.name == "status":
            values.append("'Connected'")
        elif field.name == "last_heartbeat_at":
            values.append(f"TIMESTAMPTZ '{BASE.isoformat()}' + g * INTERVAL '1 millisecond'")
        elif field.name == "identity_principal_id":
            values.append("gen_random_uuid()")
        elif field.null:
            values.append("NULL")
        elif field.get_internal_type() == "JSONField":
            values.append("'[]'::jsonb" if field.default is list else "'{}'::jsonb")
        elif field.get_internal_type() == "DateTimeField":
            values.append("now()")
        elif field.get_internal_type() == "BooleanField":
            values.append("false")
        else:
            default = field.default if isinstance(field.default, str) else ""
            values.append("'" + default.replace("'", "''") + "'")
    cursor.execute(
        f"INSERT INTO machines_machine ({', '.join(columns)}) "  # noqa: S608 - columns and literals built above
        f"SELECT {', '.join(values)} FROM generate_series(1, %s) AS g",
        [fleet],
    )
    # Two tags each, as the blade bench has: every transition then writes 2 × (1 + 2) rows of the counts summary.
    cursor.execute(
        "INSERT INTO machines_machinetag (machine_id, key, value) SELECT id, 'env', 'prod' FROM machines_machine"
        " UNION ALL SELECT id, 'team', 'team-' || (id % 50) FROM machines_machine"
    )


def reset(cursor) -> None:
    from machines.fleet_counts import fleet_counts_compact

    cursor.execute(
        "UPDATE machines_machine SET status = 'Connected', last_status_change = NULL WHERE status <> 'Connected'"
    )
    cursor.execute("TRUNCATE machines_machinestatusevent, machines_webhookdelivery, activity_activityevent")
    fleet_counts_compact()


def vacuum(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE machines_machine")
        cursor.execute("VACUUM ANALYZE machines_machinestatusevent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", type=int, default=FLEET)
    parser.add_argument("--due", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help="write the figures into docs/performance.md")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    from tqdm import tqdm

    os.environ.pop("REDIS_URL", None)  # the sweep alone: no heartbeat buffer, no Redis cache
    environment = throwaway_environment(DB_NAME, script="bench/sweep.py", postgres_only=True, keep=args.keep)
    try:
        setup_django()
        run(args, tqdm)
    finally:
        environment.cleanup()


def run(args, tqdm) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from machines.fleet_counts import fleet_counts_compact
    from machines.services import machine_status_sweep
    from machines.services.transitions import SWEEP_CHUNK

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        facts = machine_facts(cursor)
    print("machine:", ", ".join(f"{k}={v}" for k, v in facts.items()))

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        seed(cursor, args.fleet)
    fleet_counts_compact()
    vacuum(connection)
    seed_seconds = time.perf_counter() - started
    print(f"seeded {args.fleet:,} machines in {seed_seconds:.1f} s")

    results = []
    total_runs = len(args.due) * args.repeat * 2
    with tqdm(total=total_runs, desc="sweep runs", unit="run") as progress:
        for due in args.due:
            now = BASE + OFFLINE + timedelta(milliseconds=due + 0.5)
            cutoff = now - OFFLINE
            timings = {"sweep": [], "sql": [], "fold": []}
            for _ in range(args.repeat):
                for kind in ("sweep", "sql"):
                    with connection.cursor() as cursor:
                        reset(cursor)
                    vacuum(connection)
                    t0 = time.perf_counter()
                    if kind == "sweep":
                        result = machine_status_sweep(now=now)
                        done = result.total
                    else:
                        with transaction.atomic(), connection.cursor() as cursor:
                            cursor.execute(BASELINE_WITH_ACTIVITY_SQL, {"offline": OFFLINE, "cutoff": cutoff})
                            done = cursor.rowcount
                    timings[kind].append(time.perf_counter() - t0)
                    if kind == "sweep":  # what the sweep task does next: fold the counts summary's deltas
                        t0 = time.perf_counter()
                        fleet_counts_compact()
                        timings["fold"].append(time.perf_counter() - t0)
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT count(*) FROM machines_machinestatusevent")
                        events = cursor.fetchone()[0]
                        cursor.execute("SELECT count(*) FROM activity_activityevent")
                        activity = cursor.fetchone()[0]
                    if done != due or events != due or activity != due:
                        sys.exit(f"{kind} recorded {done} transitions / {events} events / {activity} activity events,"
                                 f" expected {due}")  # fmt: skip
                    progress.update(1)
            sweep_s, sql_s = statistics.median(timings["sweep"]), statistics.median(timings["sql"])
            results.append((due, sweep_s, sql_s, statistics.median(timings["fold"])))

    # A sweep with nothing to do on the same million (everything recorded): the steady state every 60 s.
    with connection.cursor() as cursor:
        reset(cursor)
    now = BASE + OFFLINE + timedelta(milliseconds=args.due[-1] + 0.5)
    machine_status_sweep(now=now)
    vacuum(connection)
    idle = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        assert machine_status_sweep(now=now).total == 0
        idle.append(time.perf_counter() - t0)
    idle_s = statistics.median(idle)

    wal = wal_per_chunk(connection, transaction, tqdm)

    lines = [
        "| due transitions | `machine_status_sweep` | hand-written SQL | ratio | then folding the counts summary |",
        "|---:|---:|---:|---:|---:|",
    ]
    for due, sweep_s, sql_s, fold_s in results:
        lines.append(
            f"| {due:,} | {sweep_s * 1000:,.0f} ms | {sql_s * 1000:,.0f} ms | {sweep_s / sql_s:.2f}× "
            f"| {fold_s * 1000:,.0f} ms |"
        )
    lines.append(f"| 0 (all recorded) | {idle_s * 1000:,.1f} ms | – | – | – |")
    table = "\n".join(lines)
    table += "\n\n" + wal
    print()
    print(f"fleet {args.fleet:,} machines, SWEEP_CHUNK={SWEEP_CHUNK}, median of {args.repeat}")
    print(table)
    if args.write_docs:
        write_docs(facts, table, args, seed_seconds)


def wal_per_chunk(connection, transaction, tqdm) -> str:
    """Load-independent comparison: EXPLAIN (ANALYZE, WAL, BUFFERS) of one sweep chunk against the hand-written
    statement on the same rows, both rolled back."""
    import json

    from django.utils import timezone

    from machines import sweep
    from machines.conf import status_thresholds
    from machines.services import transitions
    from machines.services.transitions import SWEEP_CHUNK

    now = BASE + OFFLINE + timedelta(milliseconds=SWEEP_CHUNK + 0.5)
    with connection.cursor() as cursor:
        reset(cursor)
    vacuum(connection)
    step = next(
        s
        for s in sweep.sweep_steps(now=now, thresholds=status_thresholds())
        if (s.source, s.target) == ("Connected", "Disconnected")
    )
    figures = {}
    for kind in ("sweep chunk", "hand-written SQL"):
        with transaction.atomic(), connection.cursor() as cursor:
            if kind == "sweep chunk":
                sql, params = transitions.sweep_chunk_sql_statement(step, limit=SWEEP_CHUNK, recorded_at=timezone.now())
            else:
                sql, params = BASELINE_SQL, {"offline": OFFLINE, "cutoff": now - OFFLINE}
            cursor.execute("EXPLAIN (ANALYZE, WAL, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
            transaction.set_rollback(True)
        node = plan["Plan"]
        figures[kind] = (node["WAL Records"], node["WAL Bytes"], node["Shared Hit Blocks"] + node["Shared Read Blocks"])
    sweep_fig, sql_fig = figures["sweep chunk"], figures["hand-written SQL"]
    return "\n".join(
        [
            f"Work per {SWEEP_CHUNK:,} transitions of the status statement alone, without the activity events (EXPLAIN"
            " ANALYZE, WAL, BUFFERS; independent of machine load):",
            "",
            "| statement | WAL records | WAL bytes | buffers touched |",
            "|---|---:|---:|---:|",
            *(f"| {k} | {r:,} | {b:,} | {t:,} |" for k, (r, b, t) in figures.items()),
            "| ratio | " + " | ".join(f"{a / b:.2f}×" for a, b in zip(sweep_fig, sql_fig, strict=True)) + " |",
        ]
    )


def write_docs(facts: dict[str, str], table: str, args, seed_seconds: float) -> None:
    from machines.services.transitions import SWEEP_CHUNK

    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    section = f"""## Status sweep

`bench/sweep.py` ({datetime.now(UTC):%Y-%m-%d}, commit {commit.strip() or "?"}): {args.fleet:,} machines in one
PostgreSQL table with two tags each (seeded with `INSERT … SELECT generate_series` in {seed_seconds:.0f} s, the counts
summary's triggers included: each transition writes 2 × (1 + 2) delta rows), the sweep moving
*n* of them Connected → Disconnected, against one hand-written statement doing the same work (`UPDATE … RETURNING`
feeding one `INSERT` of the status events and one of the activity-log events, one transaction). The sweep also
runs its six other steps (nothing due) and commits every {SWEEP_CHUNK:,} rows. Median of {args.repeat} runs; the
table is vacuumed before each run. The last column is what the sweep task does after the sweep: fold the summary's
deltas (`fleet_counts_compact`).

{table}

Machine: {facts["nproc"]} CPUs ({facts["cpu"]}), {facts["memory"]} memory, {facts["postgresql"]},
Python {facts["python"]}; load average at the start {facts["load"]} (other work was running: wall-clock figures on a
shared 2-CPU box are noisy, the WAL/buffer figures are not).
Goal: at most 1.5× the hand-written SQL. Re-run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/arcportal_bench_sweep
.venv/bin/python bench/sweep.py --write-docs`.
"""
    marker = "## Status sweep"
    if marker in text:
        head, _, rest = text.partition(marker)
        tail = rest.split("\n## ", 1)
        text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
