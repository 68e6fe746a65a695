"""Benchmark of the Machines list page (server time) and its counts query on a throwaway database.

    .venv/bin/python bench/list_page.py [--machines 100000] [--repeat 30] [--keep] [--reuse] [--only LABEL]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/arcportal_bench .venv/bin/python bench/list_page.py

Without DATABASE_URL it uses a SQLite file in a temporary directory (ARC_VAR_DIR). With a PostgreSQL URL it always
works on a database named ``arcportal_bench`` (created and dropped here; never the database the URL names otherwise;
``ARC_BENCH_DATABASE`` renames it). ``--keep`` leaves the seeded fleet, ``--reuse`` times it again (PostgreSQL). It
seeds N machines (PostgreSQL: one INSERT … SELECT; SQLite: bulk_create in batches), then times the list page through
Django's test Client with a signed-in user (middleware, view, queries and template: the server's whole share of a
request) for several filter combinations, plus the HTMX rows poll and the counts strip alone — from the counts summary
the blade reads (machines/fleet_counts.py) and with COUNT over the same list — and prints p50/p95 per case. The user
is Owner of the subscription, as ``manage.py bootstrap`` makes the administrator.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from datetime import timedelta

from _harness import percentile, setup_django, throwaway_environment

BENCH_DB = "arcportal_bench"
BATCH = 5000
LOCATIONS = ["eastus", "eastus2", "westus2", "westeurope", "northeurope", "uksouth", "japaneast", "australiaeast"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=100_000, help="machines to seed (default 100000)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case (default 30)")
    parser.add_argument("--resource-groups", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: time a fleet an earlier --keep run seeded")
    parser.add_argument("--only", action="append", help="run only the cases whose label contains this (repeatable)")
    return parser.parse_args()


# --- Django on the throwaway database (bench/_harness/) ---------------------------------------------------------


def setup_test_client_django() -> None:
    from django.conf import settings

    setup_django(log_level="ERROR")
    # The test Client's host, and plain static storage (no collectstatic manifest in a throwaway run).
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- Seeding -----------------------------------------------------------------------------------------------------


def seed(n_machines: int, n_groups: int) -> dict:
    from django.db import connection
    from django.utils import timezone
    from tqdm import tqdm

    from identity.services import tenant_ensure
    from machines.conf import status_thresholds
    from machines.fleet_counts import fleet_counts_compact
    from machines.models import Machine, MachineTag, ResourceGroup
    from machines.services import subscription_ensure_default
    from machines.status import derive_status

    rng = random.Random(42)
    now = timezone.now()
    subscription = subscription_ensure_default(tenant=tenant_ensure())
    groups = ResourceGroup.objects.bulk_create(
        [
            ResourceGroup(subscription=subscription, name=f"rg-{i:02d}", location=LOCATIONS[i % len(LOCATIONS)])
            for i in range(n_groups)
        ]
    )

    def heartbeat():
        roll = rng.random()
        if roll < 0.70:
            return now - timedelta(seconds=rng.randint(0, 300))  # Connected
        if roll < 0.85:
            return now - timedelta(minutes=rng.randint(26, 60 * 24 * 30))  # Offline
        if roll < 0.90:
            return now - timedelta(days=rng.randint(46, 120))  # Expired
        return None  # not connected yet

    thresholds = status_thresholds()
    if connection.vendor == "postgresql":
        seed_postgresql(n_machines, [g.pk for g in groups], now)
        return {"subscription": subscription, "now": now}
    with tqdm(total=n_machines, unit="machine", desc="seeding") as progress:
        for start in range(0, n_machines, BATCH):
            size = min(BATCH, n_machines - start)
            batch = []
            for i in range(start, start + size):
                windows = rng.random() < 0.4
                batch.append(
                    Machine(
                        resource_group=groups[i % n_groups],
                        name=f"srv-{i:07d}",
                        location=LOCATIONS[rng.randrange(len(LOCATIONS))],
                        os_name="windows" if windows else "linux",
                        os_type="windows" if windows else "linux",
                        os_sku="Windows Server 2022 Datacenter" if windows else "Ubuntu 22.04",
                        agent_version=f"1.{rng.randint(40, 52)}.0",
                        computer_name=f"srv-{i:07d}",
                        last_heartbeat_at=heartbeat(),
                        display_name=f"srv-{i:07d}",
                    )
                )
                batch[-1].status = derive_status(last_heartbeat_at=batch[-1].last_heartbeat_at, now=now,
                                                 thresholds=thresholds)  # fmt: skip
            created = Machine.objects.bulk_create(batch, batch_size=BATCH)
            tags = []
            for machine in created:
                tags.append(MachineTag(machine=machine, key="env", value=rng.choice(["prod", "dev", "test"])))
                tags.append(MachineTag(machine=machine, key="team", value=f"team-{rng.randint(1, 50)}"))
            MachineTag.objects.bulk_create(tags, batch_size=BATCH)
            progress.update(size)
    fleet_counts_compact()  # as the sweep does after its run
    with connection.cursor() as cursor:
        # A long-lived table has been vacuumed by autovacuum; a freshly bulk-loaded one has not.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"subscription": subscription, "now": now}


def seed_postgresql(n_machines: int, groups: list[int], now) -> None:
    """The same fleet as the Python loop below (same shares of statuses, OS, locations, agent versions and tags,
    drawn by the database's seeded random()), with INSERT … SELECT generate_series: a million machines in about a
    minute instead of many."""
    from _harness import model_defaults
    from django.db import connection, transaction

    from machines.fleet_counts import fleet_counts_compact
    from machines.models import Machine

    heartbeat = (
        "CASE WHEN r.hb < 0.70 THEN %(now)s - floor(random() * 301) * interval '1 second'"
        " WHEN r.hb < 0.85 THEN %(now)s - (26 + floor(random() * (60 * 24 * 30 - 25))) * interval '1 minute'"
        " WHEN r.hb < 0.90 THEN %(now)s - (46 + floor(random() * 75)) * interval '1 day' END"
    )
    columns = {
        "name": "'srv-' || lpad(i::text, 7, '0')",
        "resource_group_id": f"(%(groups)s::bigint[])[1 + i %% {len(groups)}]",
        "location": f"(ARRAY{LOCATIONS})[1 + floor(random() * {len(LOCATIONS)})::int]",
        "os_name": "CASE WHEN r.win THEN 'windows' ELSE 'linux' END",
        "os_type": "CASE WHEN r.win THEN 'windows' ELSE 'linux' END",
        "os_sku": "CASE WHEN r.win THEN 'Windows Server 2022 Datacenter' ELSE 'Ubuntu 22.04' END",
        "agent_version": "'1.' || (40 + floor(random() * 13)::int) || '.0'",
        "computer_name": "'srv-' || lpad(i::text, 7, '0')",
        "display_name": "'srv-' || lpad(i::text, 7, '0')",
        "last_heartbeat_at": heartbeat,
        # Recorded as the status sweep leaves it (the counts summary counts by the recorded status).
        "status": "CASE WHEN r.hb < 0.70 THEN 'Connected' WHEN r.hb < 0.85 THEN 'Disconnected'"
        " WHEN r.hb < 0.90 THEN 'Expired' ELSE 'AwaitingConnection' END",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
    }
    defaults, values = model_defaults(Machine, set(columns))
    params = {"now": now, "groups": groups, "n": n_machines - 1, **{f"d{i}": v for i, v in enumerate(values)}}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"INSERT INTO machines_machine ({', '.join([*columns, *defaults])}) "  # noqa: S608 - names above
            f"SELECT {', '.join(columns.values())}, {', '.join(f'%(d{i})s' for i in range(len(values)))} "
            "FROM generate_series(0, %(n)s) AS i, LATERAL (SELECT random() < 0.4 + 0 * i AS win,"
            " random() + 0 * i AS hb) AS r",
            params,
        )
        cursor.execute(
            "INSERT INTO machines_machinetag (machine_id, key, value) "
            "SELECT id, 'env', (ARRAY['prod', 'dev', 'test'])[1 + floor(random() * 3)::int] FROM machines_machine "
            "UNION ALL SELECT id, 'team', 'team-' || (1 + floor(random() * 50)::int) FROM machines_machine"
        )
    fleet_counts_compact()  # the triggers' deltas, folded as the sweep does after its run
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def reage_postgresql() -> None:
    """A kept fleet, moved to now: every heartbeat shifted by the time since the newest one, so that the shares of
    statuses are the seed's again (without it, a fleet reused an hour later would be all Offline, with the sweep
    never run). The recorded statuses and the counts summary do not change."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE machines_machine SET last_heartbeat_at = last_heartbeat_at"
            " + (now() - (SELECT max(last_heartbeat_at) FROM machines_machine))"
        )
        cursor.execute("VACUUM ANALYZE machines_machine")


# --- Measuring ---------------------------------------------------------------------------------------------------


def time_call(func, repeat: int) -> list[float]:
    for _ in range(3):  # warm caches and connections
        func()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    args = parse_args()
    environment = throwaway_environment(BENCH_DB, script="bench/list_page.py", keep=args.keep or args.reuse,
                                        reuse=args.reuse)  # fmt: skip
    try:
        setup_test_client_django()
        run(args, environment.kind)
    finally:
        if args.keep:
            print(f"kept the bench database ({os.environ['DATABASE_URL']})")
        environment.cleanup()


def run(args: argparse.Namespace, kind: str) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from identity.middleware import user_with_grants
    from identity.role_assignments import user_role_ensure
    from machines.filters import MachineFilterSet
    from machines.fleet_counts import machine_list_counts
    from machines.governance import machines_permitted
    from machines.models import Machine
    from machines.selectors import machine_base_queryset, machine_status_counts

    print(f"database: {kind} ({connection.settings_dict['NAME']}), machines: {args.machines:,}")
    call_command("migrate", verbosity=0)
    existing = Machine.objects.count()
    if existing and not (args.reuse and existing == args.machines):
        raise SystemExit(f"The bench database holds {existing:,} machines, not {args.machines:,}: drop --reuse.")
    if existing:
        from machines.models import Subscription

        data = {"subscription": Subscription.objects.order_by("id").first()}
        if kind == "postgresql":
            reage_postgresql()
        print(f"reused the fleet of an earlier --keep run ({existing:,} machines), heartbeats moved to now")
    else:
        started = time.perf_counter()
        data = seed(args.machines, args.resource_groups)
        print(f"seeded in {time.perf_counter() - started:.1f} s")

    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        username="bench", password=uuid.uuid4().hex
    )
    sub = data["subscription"].subscription_id
    # What `manage.py bootstrap` gives the administrator: Owner of the subscription (without a role the list is
    # empty, and the bench would time empty pages).
    user_role_ensure(username=user.get_username(), role="Owner", scope=f"/subscriptions/{sub}")
    client = Client()
    client.force_login(user)
    user = user_with_grants(user)  # as the middleware hands it to the view (for the counts timed alone)
    cases = [
        ("no filter, page 1", ""),
        ("status=Connected", "status=Connected"),
        ("status=Disconnected, sort -last_heartbeat", "status=Disconnected&sort=-last_heartbeat"),
        ("status=Expired", "status=Expired"),
        ("location + os", "location=westeurope&os=windows"),
        ("tag env=prod", "tag=env%3Dprod"),
        ("resource group, sort -name", "resource_group=rg-07&sort=-name"),
        ("name search q=srv-00042", "q=srv-00042"),
        ("sort by status, page 100", "sort=status&page=100"),
        ("sort by resource group", "sort=resource_group"),
        ("everything combined", f"subscription={sub}&status=Connected&tag=team%3Dteam-7&os=linux&sort=agent_version"),
    ]
    rows = []

    def chosen(label: str) -> bool:
        return not args.only or any(part in label for part in args.only)

    for label, query in cases:
        if not chosen(label):
            continue
        url = f"/?{query}" if query else "/"

        def get(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert b"data-status=" in response.content, f"{url} listed no machine"
            return response

        with CaptureQueriesContext(connection) as queries:
            get()
        query_count = len(queries)  # read now: the next request resets the connection's query log
        samples = time_call(get, args.repeat)
        db_samples = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                get()
            db_samples.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        rows.append(("list " + label, samples, query_count, statistics.median(db_samples)))
    if chosen("HTMX rows poll"):
        poll = time_call(lambda: client.get("/?status=Connected", HTTP_HX_REQUEST="true"), args.repeat)
        rows.append(("HTMX rows poll (status=Connected)", poll, None, None))

    for label, params in [
        ("all machines", {}),
        ("tag env=prod", {"tag": "env=prod"}),
        ("location + os", {"location": "westeurope", "os": "windows"}),
    ]:
        # The counts strip both ways, for the same user: COUNT over the filtered list, and the summary the blade reads.
        now = timezone.now()
        filterset = MachineFilterSet(params, queryset=machines_permitted(machine_base_queryset(), user), now=now)
        assert filterset.is_valid()
        if chosen(f"counts (COUNT): {label}"):
            samples = time_call(lambda f=filterset, now=now: machine_status_counts(queryset=f.qs, now=now), args.repeat)
            rows.append((f"counts (COUNT): {label}", samples, 1, statistics.median(samples)))
        if chosen(f"counts (summary): {label}"):
            samples = time_call(
                lambda f=filterset, now=now: machine_list_counts(filterset=f, principal=user, now=now), args.repeat
            )
            rows.append((f"counts (summary): {label}", samples, None, statistics.median(samples)))

    width = max(len(row[0]) for row in rows)
    print()
    print(f"{'case':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}  {'queries':>7}  {'DB ms (p50)':>11}")
    print("-" * (width + 54))
    for label, samples, queries, db_ms in rows:
        print(
            f"{label:<{width}}  {statistics.median(samples):8.1f}  {percentile(samples, 95):8.1f}  "
            f"{max(samples):8.1f}  {queries if queries is not None else '':>7}  "
            f"{f'{db_ms:.1f}' if db_ms is not None else '':>11}"
        )
    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    worst = max((percentile(row[1], 95) for row in rows if row[0].startswith("list")), default=0)
    print(f"\nworst list p95: {worst:.1f} ms (goal < 150 ms on PostgreSQL); page size {settings.ARC_PORTAL_PAGE_SIZE}")


if __name__ == "__main__":
    main()
