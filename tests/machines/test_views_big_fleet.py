"""The Machines list over 1,000 machines: every filter, every sortable column, paging, CSV and the query budget.

The fleet is built once per module (bulk_create, committed) and removed afterwards; no test here writes to it.
"""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from identity.models import Tenant
from machines import status as rules
from machines.conf import status_thresholds
from machines.models import Machine, MachineTag, Subscription
from machines.status import derive_status
from tests.conftest import NOW
from tests.machines.factories import ResourceGroupFactory, SubscriptionFactory, TenantFactory

pytestmark = pytest.mark.django_db

LIST = "/"
ROW = re.compile(r'<tr id="machine-(\d+)" data-status="([A-Za-z]*)">')


@pytest.fixture
def frozen(frozen_clock):
    return frozen_clock


def row_ids(response) -> list[int]:
    return [int(pk) for pk, _ in ROW.findall(response.content.decode())]


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


LOCATIONS = ["westeurope", "eastus", "japaneast", "uksouth", "westus2"]
SKUS = {"windows": "Windows Server 2022 Datacenter", "linux": "Ubuntu 22.04"}


@pytest.fixture(scope="module")
def big_fleet(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        data = _build_fleet(NOW)
        yield data
        Subscription.objects.filter(pk__in=[data["subscription"].pk, data["other"].pk]).delete()
        Tenant.objects.filter(pk=data["subscription"].tenant_id).delete()


@pytest.fixture
def page_size(settings):
    settings.ARC_PORTAL_PAGE_SIZE = 2000
    return settings


def _build_fleet(frozen):
    subscription = SubscriptionFactory(tenant=TenantFactory(), display_name="Main")
    other = SubscriptionFactory(tenant=subscription.tenant, display_name="Other")
    groups = [
        ResourceGroupFactory(subscription=subscription, name="rg-alpha"),
        ResourceGroupFactory(subscription=subscription, name="RG-beta"),
        ResourceGroupFactory(subscription=subscription, name="rg-gamma"),
        ResourceGroupFactory(subscription=other, name="rg-other"),
    ]
    beats = [
        lambda i: frozen - timedelta(seconds=i),
        lambda i: frozen - timedelta(minutes=30, seconds=i),
        lambda i: frozen - timedelta(days=50, seconds=i),
        lambda i: None,
        lambda i: frozen - timedelta(minutes=10, seconds=i),
    ]
    machines = []
    for i in range(1000):
        os_name = "windows" if i % 3 == 0 else "linux"
        machines.append(
            Machine(
                resource_group=groups[i % 4],
                name=f"SRV-{i:04d}" if i % 7 == 0 else f"srv-{i:04d}",
                location=LOCATIONS[i % 5],
                os_name=os_name,
                os_sku=SKUS[os_name],
                agent_version=f"1.{40 + i % 12}.0",
                last_heartbeat_at=beats[(i // 2) % 5](i),
            )
        )
    Machine.objects.bulk_create(machines, batch_size=500)
    machines = list(Machine.objects.select_related("resource_group__subscription").order_by("pk"))
    tags = []
    for i, machine in enumerate(machines):
        tags.append(MachineTag(machine=machine, key="env", value="prod" if i % 2 == 0 else "dev"))
        if i % 10 == 0:
            tags.append(MachineTag(machine=machine, key="Team" if i % 20 == 0 else "team", value="ops"))
    MachineTag.objects.bulk_create(tags, batch_size=500)
    team = set(MachineTag.objects.filter(key__iexact="team").values_list("machine_id", flat=True))
    prod = set(MachineTag.objects.filter(key="env", value="prod").values_list("machine_id", flat=True))
    return {
        "machines": machines,
        "groups": groups,
        "subscription": subscription,
        "other": other,
        "team": team,
        "prod": prod,
    }


def derived(machine, now):
    return derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=now, thresholds=status_thresholds())


def test_big_fleet_has_every_status(big_fleet, frozen):
    assert {derived(m, frozen) for m in big_fleet["machines"]} == set(rules.ALL_STATUSES)


FILTERS = {
    "subscription": lambda fleet: (
        {"subscription": str(fleet["other"].subscription_id)},
        lambda m, now: m.resource_group.subscription_id == fleet["other"].pk,
    ),
    "resource_group": lambda fleet: ({"resource_group": "rg-beta"}, lambda m, now: m.resource_group.name == "RG-beta"),
    "location": lambda fleet: ({"location": "japaneast"}, lambda m, now: m.location == "japaneast"),
    "status": lambda fleet: ({"status": "Disconnected"}, lambda m, now: derived(m, now) == rules.DISCONNECTED),
    "os": lambda fleet: ({"os": "windows"}, lambda m, now: m.os_name == "windows"),
    "tag": lambda fleet: ({"tag": "TEAM=ops"}, lambda m, now: m.pk in fleet["team"]),
    "q": lambda fleet: ({"q": "srv-00"}, lambda m, now: "srv-00" in m.name.lower()),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_on_1000_machines_in_list_and_csv(portal_client, big_fleet, frozen, page_size, name):
    params, predicate = FILTERS[name](big_fleet)
    expected = {m.pk for m in big_fleet["machines"] if predicate(m, frozen)}
    assert 0 < len(expected) < 1000

    response = portal_client.get(LIST, params)
    assert response.status_code == 200
    assert set(row_ids(response)) == expected
    assert len(row_ids(response)) == len(expected)
    assert f"of {len(expected):,} records" in response.content.decode()

    export = portal_client.get(reverse("machines:machine-export"), params)
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = csv_rows(export)
    by_name = {m.name: m.pk for m in big_fleet["machines"]}
    assert sorted(by_name[row["Name"]] for row in rows) == sorted(expected)


SORT_KEYS = {
    "name": lambda m: (m.name.lower(), m.pk),
    "status": lambda m: (
        m.last_heartbeat_at is None,
        -(m.last_heartbeat_at.timestamp() if m.last_heartbeat_at else 0),
        m.pk,
    ),
    "resource_group": lambda m: (m.resource_group.name.lower(), m.resource_group_id, m.name.lower(), m.pk),
    "location": lambda m: (m.location, m.name.lower(), m.pk),
    "os": lambda m: (m.os_sku, m.name.lower(), m.pk),
    "agent_version": lambda m: (m.agent_version, m.name.lower(), m.pk),
    "last_heartbeat": lambda m: (
        m.last_heartbeat_at is not None,
        m.last_heartbeat_at.timestamp() if m.last_heartbeat_at else 0,
        m.pk,
    ),
}


@pytest.mark.parametrize("column", list(SORT_KEYS))
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_each_column_sorts_1000_machines(portal_client, big_fleet, frozen, settings, column, descending):
    """Pages 1, 3 and 7 of the list hold the right slices of the sorted fleet (page 3 straddles two resource
    groups); the CSV holds all of it in order."""
    settings.ARC_PORTAL_PAGE_SIZE = 100
    expected = [m.pk for m in sorted(big_fleet["machines"], key=SORT_KEYS[column], reverse=descending)]
    sort = f"-{column}" if descending else column
    for number in (1, 3, 7):
        response = portal_client.get(LIST, {"sort": sort, "page": number})
        assert response.status_code == 200
        assert row_ids(response) == expected[(number - 1) * 100 : number * 100]
    html = response.content.decode()
    assert f'aria-sort="{"descending" if descending else "ascending"}"' in html
    export = portal_client.get(reverse("machines:machine-export"), {"sort": sort})
    by_name = {m.name: m.pk for m in big_fleet["machines"]}
    assert [by_name[row["Name"]] for row in csv_rows(export)] == expected


def test_pages_of_1000_machines(portal_client, big_fleet, frozen, settings):
    settings.ARC_PORTAL_PAGE_SIZE = 50
    ordered = [m.pk for m in sorted(big_fleet["machines"], key=SORT_KEYS["status"])]
    seen = []
    for number in (1, 2, 20):
        response = portal_client.get(LIST, {"sort": "status", "page": number})
        assert row_ids(response) == ordered[(number - 1) * 50 : number * 50]
        seen += row_ids(response)
    html = portal_client.get(LIST, {"sort": "status", "page": 3}).content.decode()
    assert "Showing 101 to 150 of 1,000 records." in html
    assert "Page 3 of 20" in html
    assert "page=4" in html and "sort=status" in html
    assert len(set(seen)) == 150
    # A page number past the end shows the last page rather than an error.
    assert row_ids(portal_client.get(LIST, {"sort": "status", "page": 999})) == ordered[950:]
    # The HTMX poll of page 2 refreshes page 2.
    fragment = portal_client.get(LIST, {"sort": "status", "page": 2}, HTTP_HX_REQUEST="true")
    assert row_ids(fragment) == ordered[50:100]


def test_csv_holds_every_page_of_the_filtered_view(portal_client, big_fleet, settings, frozen):
    settings.ARC_PORTAL_PAGE_SIZE = 50
    rows = csv_rows(portal_client.get(reverse("machines:machine-export"), {"tag": "env=prod", "sort": "-name"}))
    expected = [m for m in big_fleet["machines"] if m.pk in big_fleet["prod"]]
    expected.sort(key=SORT_KEYS["name"], reverse=True)
    assert [row["Name"] for row in rows] == [m.name for m in expected]
    assert len(rows) == 500
    first = rows[0]
    assert first["Status"] == {"Connected": "Connected", "Disconnected": "Offline", "Expired": "Expired"}.get(
        derived(expected[0], frozen), ""
    )
    assert "env=prod" in first["Tags"]
    assert first["Resource ID"].endswith(f"/providers/Microsoft.HybridCompute/machines/{expected[0].name}")


def test_list_query_count_is_bounded(portal_client, big_fleet, frozen, settings, django_assert_max_num_queries):
    settings.ARC_PORTAL_PAGE_SIZE = 50
    # 9 = the 8 of the list itself + 1 for the user's role assignments (identity.middleware, once per request).
    with django_assert_max_num_queries(9):
        response = portal_client.get(LIST, {"tag": "env=prod", "status": "Connected", "sort": "-last_heartbeat"})
    assert len(row_ids(response)) == 50
    with django_assert_max_num_queries(9):
        portal_client.get(LIST, HTTP_HX_REQUEST="true")
