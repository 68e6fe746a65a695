"""MachineFilterSet: the one filter spec of the Machines blade (and of any ARM list that reuses it)."""

from datetime import timedelta

import pytest

from machines.filters import MachineFilterSet
from machines.models import Machine
from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(now):
    sub_a, sub_b = SubscriptionFactory(), SubscriptionFactory()
    web = ResourceGroupFactory(subscription=sub_a, name="rg-Web", location="westeurope")
    data = ResourceGroupFactory(subscription=sub_b, name="rg-data", location="eastus")
    machines = {
        "web-01": MachineFactory(resource_group=web, name="web-01", last_heartbeat_at=now, os_name="linux"),
        "web-02": MachineFactory(
            resource_group=web, name="WEB-02", last_heartbeat_at=now - timedelta(hours=1), os_name="windows"
        ),
        "db-01": MachineFactory(
            resource_group=data, name="db-01", last_heartbeat_at=now - timedelta(days=60), location="eastus"
        ),
        "db-02": MachineFactory(resource_group=data, name="db-02", last_heartbeat_at=None, location="eastus"),
    }
    MachineTagFactory(machine=machines["web-01"], key="Env", value="prod")
    MachineTagFactory(machine=machines["web-02"], key="env", value="Prod")
    MachineTagFactory(machine=machines["db-01"], key="env", value="prod")
    MachineTagFactory(machine=machines["db-01"], key="owner", value="")
    return {"subscriptions": (sub_a, sub_b), "machines": machines}


def names(data, now) -> list[str]:
    filterset = MachineFilterSet(data, queryset=Machine.objects.all(), now=now)
    assert filterset.is_valid(), filterset.errors
    return [m.name.lower() for m in filterset.qs]


def errors(data, now) -> dict:
    filterset = MachineFilterSet(data, queryset=Machine.objects.all(), now=now)
    assert not filterset.is_valid()
    return {key: [str(m) for m in value] for key, value in filterset.errors.items()}


def test_no_filters_lists_everything_by_name(fleet, now):
    assert names({}, now) == ["db-01", "db-02", "web-01", "web-02"]


def test_subscription_filter(fleet, now):
    sub_a, sub_b = fleet["subscriptions"]
    assert names({"subscription": str(sub_b.subscription_id)}, now) == ["db-01", "db-02"]
    assert names({"subscription": str(sub_a.subscription_id).upper()}, now) == ["web-01", "web-02"]


def test_resource_group_filter_is_case_insensitive(fleet, now):
    assert names({"resource_group": "RG-WEB"}, now) == ["web-01", "web-02"]


def test_location_accepts_display_names(fleet, now):
    assert names({"location": "East US"}, now) == ["db-01", "db-02"]
    assert names({"location": "westeurope"}, now) == ["web-01", "web-02"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Connected", ["web-01"]),
        ("Disconnected", ["web-02"]),
        ("offline", ["web-02"]),
        ("Expired", ["db-01"]),
        ("AwaitingConnection", ["db-02"]),
    ],
)
def test_status_filter_is_derived_at_now(fleet, now, value, expected):
    assert names({"status": value}, now) == expected


def test_status_filter_ignores_the_stored_status(fleet, now):
    Machine.objects.update(status="Connected")
    assert names({"status": "Connected"}, now) == ["web-01"]


def test_status_filter_moves_with_now(fleet, now):
    assert names({"status": "Connected"}, now + timedelta(minutes=26)) == []


def test_os_filter(fleet, now):
    assert names({"os": "Windows"}, now) == ["web-02"]


def test_tag_filter_key_case_insensitive_value_exact(fleet, now):
    assert names({"tag": "ENV=prod"}, now) == ["db-01", "web-01"]
    assert names({"tag": "env=Prod"}, now) == ["web-02"]


def test_tag_filter_key_alone_and_empty_value(fleet, now):
    assert names({"tag": "owner"}, now) == ["db-01"]
    assert names({"tag": "owner="}, now) == ["db-01"]
    assert names({"tag": "env"}, now) == ["db-01", "web-01", "web-02"]


def test_name_search(fleet, now):
    assert names({"q": "WEB"}, now) == ["web-01", "web-02"]
    assert names({"q": "-01"}, now) == ["db-01", "web-01"]


def test_filters_combine(fleet, now):
    assert names({"resource_group": "rg-data", "tag": "env=prod", "status": "Expired"}, now) == ["db-01"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-name", ["web-02", "web-01", "db-02", "db-01"]),
        ("status", ["web-01", "web-02", "db-01", "db-02"]),
        ("-status", ["db-02", "db-01", "web-02", "web-01"]),
        ("last_heartbeat", ["db-02", "db-01", "web-02", "web-01"]),
        ("resource_group", ["db-01", "db-02", "web-01", "web-02"]),
        ("-location", ["web-02", "web-01", "db-02", "db-01"]),
    ],
)
def test_sort(fleet, now, sort, expected):
    assert names({"sort": sort}, now) == expected


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"status": "Sleeping"}, "status", "'Sleeping' is not a status"),
        ({"location": "atlantis"}, "location", "'atlantis' is not a supported region"),
        ({"os": "plan9"}, "os", "'plan9' is not an operating system"),
        ({"tag": "a/b=c"}, "tag", "can't contain /"),
        ({"tag": "=value"}, "tag", "A tag name can't be empty"),
        ({"sort": "secret_field"}, "sort", "'secret_field' is not a sortable column"),
        ({"sort": "-client_public_key"}, "sort", "is not a sortable column"),
        ({"subscription": "not-a-guid"}, "subscription", "must be a subscription ID"),
    ],
)
def test_bad_values_are_specific_errors(fleet, now, data, field, fragment):
    found = errors(data, now)
    assert list(found) == [field]
    assert fragment in found[field][0]


def test_reusable_with_a_plain_dict_and_default_now(fleet):
    filterset = MachineFilterSet({"resource_group": "rg-web"}, queryset=Machine.objects.all())
    assert filterset.is_valid()
    assert sorted(m.name.lower() for m in filterset.qs) == ["web-01", "web-02"]
    assert filterset.active_filters() == {"resource_group": "rg-web"}
