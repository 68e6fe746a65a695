"""Benchmark of Resource Graph queries on PostgreSQL: p50/p95 of five representative queries over a big fleet.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/arc_d .venv/bin/python bench/resource_graph.py \\
        [--machines 100000] [--extensions-per-machine 2] [--repeat 20] [--keep] [--explain]

It works in the database DATABASE_URL names: created and migrated when missing (and dropped again at the end unless
--keep), refused when it already holds machines (unless --reuse, which keeps a fleet of the requested size seeded by
an earlier --keep run). The fleet is bulk-inserted with INSERT … SELECT generate_series (seconds for 100,000
machines): 50 resource groups, two tags per machine, N extensions per machine, heartbeats spread over every status.
Each query is timed through ``machines.graph.executor.resource_graph_query`` — compile, count and the first page of
up to 1,000 rows, decoded — as the ARM endpoint runs it. The goal is p95 < 500 ms for each query at 100,000
machines and 200,000 extensions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from urllib.parse import urlsplit

from _harness import POSTGRES_SCHEMES, model_defaults, postgres_admin_url, setup_django

GROUPS = 50
LOCATIONS = ["eastus", "eastus2", "westus2", "westeurope", "northeurope", "uksouth", "japaneast", "australiaeast"]

QUERIES = {
    "filter + project": (
        "Resources | where type == 'microsoft.hybridcompute/machines' and properties.status == 'Disconnected'"
        " and tags['env'] == 'prod' | project name, resourceGroup, os = tostring(properties.osSku),"
        " agent = tostring(properties.agentVersion)"
    ),
    "summarize count by": (
        "Resources | where type == 'microsoft.hybridcompute/machines'"
        " | summarize count() by status = tostring(properties.status), os = tostring(properties.osName)"
    ),
    "join to extensions": None,  # Microsoft's "List all extensions installed on an Azure Arc-enabled server"
    "mv-expand": (
        "Resources | where type == 'microsoft.hybridcompute/machines' | mv-expand tag = tags"
        " | summarize count() by key = tostring(bag_keys(tag)[0])"
    ),
    "order + top": (
        "Resources | where type == 'microsoft.hybridcompute/machines'"
        " | top 20 by todatetime(properties.lastStatusChange) desc | project name, id, properties, tags"
    ),
}


# --design: the same answers computed the ways docs/decisions.md compares (how properties are reached and built).
DESIGN = {
    "status filter: path column, heartbeat range": (
        "Resources | where type == 'microsoft.hybridcompute/machines' and properties.status == 'Connected' | count"
    ),
    "status filter: properties built for every row": (
        "Resources | where type == 'microsoft.hybridcompute/machines'"
        " and properties[strcat('sta', 'tus')] == 'Connected' | count"
    ),
    "1,000 properties: built for the page's rows": (
        "Resources | where type == 'microsoft.hybridcompute/machines' | order by name asc | project name, properties"
    ),
    "1,000 properties: built for every row first": (
        "Resources | where type == 'microsoft.hybridcompute/machines' | order by name asc"
        " | project name, properties = pack('p', properties).p"
    ),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=100_000)
    parser.add_argument("--extensions-per-machine", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the database (and its fleet) afterwards")
    parser.add_argument("--reuse", action="store_true", help="use a fleet left by an earlier --keep run")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each page query")
    parser.add_argument("--only", action="append", choices=list(QUERIES), help="run only this query (repeatable)")
    parser.add_argument("--design", action="store_true", help="also time the design comparisons (docs/decisions.md)")
    return parser.parse_args()


def prepare_database() -> tuple[str, bool]:
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(POSTGRES_SCHEMES):
        sys.exit("bench/resource_graph.py runs on PostgreSQL: set DATABASE_URL=postgres://…/<your database>")
    name = urlsplit(url).path.lstrip("/")
    admin = postgres_admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return admin, not exists


def seed(machines: int, per_machine: int) -> None:
    from django.db import connection, transaction

    from identity.services import tenant_ensure
    from machines.models import Extension, Machine, ResourceGroup
    from machines.services import subscription_ensure_default

    subscription = subscription_ensure_default(tenant=tenant_ensure())
    ResourceGroup.objects.bulk_create(
        [ResourceGroup(subscription=subscription, name=f"rg-{i:02d}", location=LOCATIONS[i % 8]) for i in range(GROUPS)]
    )
    groups = list(ResourceGroup.objects.order_by("id").values_list("id", flat=True))
    machine_columns = {
        "name": "'srv-' || lpad(i::text, 6, '0')",
        "location": f"(ARRAY{LOCATIONS})[1 + i %% 8]",
        "resource_group_id": f"(ARRAY{groups})[1 + i %% {GROUPS}]",
        "vm_id": "md5('vm' || i)::uuid",
        "os_name": "CASE WHEN i %% 10 < 7 THEN 'linux' ELSE 'windows' END",
        "os_type": "CASE WHEN i %% 10 < 7 THEN 'linux' ELSE 'windows' END",
        "os_sku": "CASE WHEN i %% 10 < 7 THEN 'Ubuntu 22.04' ELSE 'Windows Server 2022 Datacenter' END",
        "computer_name": "'srv-' || lpad(i::text, 6, '0') || '.contoso.local'",
        "domain_name": "(ARRAY['contoso.local', 'fabrikam.com', 'corp.example', 'lab.local', ''])[1 + i %% 5]",
        "agent_version": "(ARRAY['1.50.0', '1.49.2', '1.48.0', '1.47.1', '1.46.0', '1.45.0'])[1 + i %% 6]",
        "detected_properties": "jsonb_build_object('cloudprovider', 'N/A', 'cores', (2 + i %% 16)::text)",
        # 70% Connected, 15% Offline, 10% Expired, 5% never seen.
        "last_heartbeat_at": (
            "CASE WHEN i %% 20 < 14 THEN now() - (i %% 300) * interval '1 second'"
            " WHEN i %% 20 < 17 THEN now() - (26 + i %% 40000) * interval '1 minute'"
            " WHEN i %% 20 < 19 THEN now() - (46 + i %% 300) * interval '1 day' END"
        ),
        "created_at": "now() - interval '60 days'",
        "updated_at": "now()",
    }
    columns, values = model_defaults(Machine, set(machine_columns))
    placeholders = ", ".join(["%s"] * len(values))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO machines_machine ({', '.join([*machine_columns, *columns])}) "  # noqa: S608 - names above
            f"SELECT {', '.join(machine_columns.values())}, {placeholders} FROM generate_series(1, %s) AS i",
            [*values, machines],
        )
        cursor.execute(
            "INSERT INTO machines_machinetag (machine_id, key, value) "
            "SELECT id, 'env', (ARRAY['prod', 'dev', 'test'])[1 + id %% 3] FROM machines_machine "
            "UNION ALL SELECT id, 'team', 'team-' || (id %% 7) FROM machines_machine",
            [],
        )
        names = ["AzureMonitorLinuxAgent", "MDE.Linux", "CustomScript", "DependencyAgentLinux"][:per_machine]
        extension_columns = {
            "machine_id": "m.id",
            "name": "x.name",
            "location": "m.location",
            "publisher": "'Microsoft.Azure.Monitor'",
            "type": "x.name",
            "type_handler_version": "'1.' || (m.id %% 30)",
            "created_at": "now()",
            "updated_at": "now()",
        }
        columns, values = model_defaults(Extension, set(extension_columns))
        cursor.execute(
            f"INSERT INTO machines_extension ({', '.join([*extension_columns, *columns])}) "  # noqa: S608 - as above
            f"SELECT {', '.join(extension_columns.values())}, {', '.join(['%s'] * len(values))} "
            "FROM machines_machine m CROSS JOIN unnest(%s::text[]) AS x(name)",
            [*values, names],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def run(repeat: int, explain: bool, only: list[str] | None, queries: dict) -> list[tuple]:
    from django.db import connection
    from django.utils import timezone

    from machines.graph.compiler import compile_query
    from machines.graph.executor import graph_env, resource_graph_query
    from machines.graph.samples import EXTENSIONS_SAMPLE
    from machines.graph.visibility import EVERYTHING

    results = []
    for label, query in queries.items():
        if only and label not in only:
            continue
        query = query or EXTENSIONS_SAMPLE
        timings = []
        result = None
        for attempt in range(repeat + 2):
            started = time.perf_counter()
            result = resource_graph_query(query=query, scopes=EVERYTHING, now=timezone.now())
            if attempt >= 2:  # two warm-up runs
                timings.append((time.perf_counter() - started) * 1000)
        results.append((label, statistics.median(timings), percentile(timings, 0.95), max(timings), len(result.rows),
                        result.total))  # fmt: skip
        if explain:
            statement = compile_query(query, env=graph_env(now=timezone.now()), scopes=EVERYTHING).page(
                offset=0, limit=1001
            )
            from machines.graph.executor import WORK_MEM

            with connection.cursor() as cursor:
                # as the executor runs them
                cursor.execute(f"SET jit = off; SET work_mem = '{WORK_MEM}'; SET enable_mergejoin = off")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, list(statement.params))
                print(f"\n-- {label}\n" + "\n".join(row[0] for row in cursor.fetchall()))
    return results


def main() -> None:
    args = parse_args()
    admin, created = prepare_database()
    setup_django(log_level="ERROR")
    from django.core.management import call_command
    from django.db import connection, connections

    from machines.models import Extension, Machine

    call_command("migrate", verbosity=0)
    existing = Machine.objects.count()
    if existing and not (args.reuse and existing == args.machines):
        sys.exit(f"The database already holds {existing} machines: use an empty database (or --reuse).")
    started = time.perf_counter()
    if not existing:
        seed(args.machines, args.extensions_per_machine)
    seeded = time.perf_counter() - started
    machines, extensions = Machine.objects.count(), Extension.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print(f"{version}; {machines:,} machines, {extensions:,} extensions (seeded in {seeded:.1f} s); "
          f"{args.repeat} timed runs per query after 2 warm-ups; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    rows = run(args.repeat, args.explain, args.only, QUERIES | (DESIGN if args.design else {}))
    print("\n| query | p50 ms | p95 ms | max ms | rows on page | total rows |\n|---|---:|---:|---:|---:|---:|")
    for label, p50, p95, worst, page, total in rows:
        print(f"| {label} | {p50:.0f} | {p95:.0f} | {worst:.0f} | {page:,} | {total:,} |")
    if created and not args.keep:
        import psycopg

        connections.close_all()
        name = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
