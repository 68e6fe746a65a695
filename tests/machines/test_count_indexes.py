"""The counts strip of a filtered Machines blade reads one index: each single filter (location, location + OS, OS,
resource group) has an index ending in the heartbeat, so the status counts are an index-only scan of the matching
entries (SQLite: a covering index) (docs/decisions.md 99; at 1,000,000 machines, docs/performance.md)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from machines.conf import status_thresholds
from machines.filters import MachineFilterSet
from machines.models import Machine
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction

CASES = {
    "location + os": ({"location": "westeurope", "os": "windows"}, "machine_location_os_hb_idx"),
    "location": ({"location": "westeurope"}, "machine_location_os_hb_idx"),
    "os": ({"os": "windows"}, "machine_os_hb_idx"),
    "resource group": ({"resource_group": "rg-counts"}, "machine_group_hb_idx"),
}


def counts_sql(params: dict, now) -> tuple[str, list]:
    queryset = MachineFilterSet(params, queryset=Machine.objects.all(), now=now).qs
    with CaptureQueriesContext(connection) as captured:
        queryset.order_by().status_counts(now=now, thresholds=status_thresholds())
    return captured.captured_queries[-1]["sql"], []


@pytest.mark.parametrize("case", list(CASES))
def test_filtered_counts_are_an_index_only_scan(case, now):
    group = ResourceGroupFactory(name="rg-counts")
    for i in range(30):
        MachineFactory(resource_group=group, name=f"m-{i}", location="westeurope" if i % 2 else "eastus",
                       os_name="windows" if i % 3 else "linux", last_heartbeat_at=now)  # fmt: skip
    params, index = CASES[case]
    statement, _ = counts_sql(params, now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE machines_machine")  # as autovacuum keeps a real fleet's table
            cursor.execute("SET enable_seqscan = off")  # a 30-row table: make the planner show its index
            cursor.execute("SET enable_bitmapscan = off")
            cursor.execute("EXPLAIN " + statement)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan")
            assert f"Index Only Scan using {index} on machines_machine" in plan, plan
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert f"USING COVERING INDEX {index}" in plan, plan
