"""The portal's Activity log and Locks pages at subscription, resource-group and machine scope (issue 13)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from arcportal.activity import record
from arcportal.activity.models import ActivityEvent
from machines.locks.models import ManagementLock
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(subscription):
    return MachineFactory(resource_group=ResourceGroupFactory(subscription=subscription, name="rg-one"), name="vm-1")


def _kwargs(machine, scope):
    group = machine.resource_group
    kwargs = {"subscription_id": group.subscription.subscription_id}
    if scope in ("resource-group", "machine"):
        kwargs["resource_group"] = group.name
    if scope == "machine":
        kwargs["name"] = machine.name
    return kwargs


@pytest.fixture
def events(machine, subscription):
    other = ResourceGroupFactory(subscription=subscription, name="rg-two")
    record(operation="Microsoft.HybridCompute/machines/write", status="Succeeded", resource_id=machine.arm_id,
           caller="alice", correlation_id="c-1")  # fmt: skip
    record(operation="Microsoft.HybridCompute/machines/delete", status="Failed", resource_id=machine.arm_id,
           caller="app-9", error={"code": "ScopeLocked", "message": "locked"})  # fmt: skip
    record(operation="Microsoft.Resources/subscriptions/resourceGroups/write", status="Succeeded",
           resource_id=other.arm_id, caller="bob")  # fmt: skip
    old = record(operation="Microsoft.HybridCompute/machines/write", status="Succeeded", resource_id=machine.arm_id,
                 caller="old")  # fmt: skip
    ActivityEvent.objects.filter(pk=old.pk).update(event_timestamp=timezone.now() - timedelta(days=3))


@pytest.mark.parametrize(
    ("scope", "callers"),
    [
        ("subscription", {"alice", "app-9", "bob"}),
        ("resource-group", {"alice", "app-9"}),
        ("machine", {"alice", "app-9"}),
    ],
)
def test_activity_log_page_at_each_scope_shows_that_scopes_events(portal_client, machine, events, scope, callers):
    url = reverse(f"machines:{scope}-activity", kwargs=_kwargs(machine, scope))
    page = portal_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html and "Activity log" in html
    shown = {c for c in ("alice", "app-9", "bob", "old") if f'<td class="event-caller">{c}</td>' in html}
    assert shown == callers
    week = portal_client.get(url, {"timespan": "7d"}).content.decode()
    assert '<td class="event-caller">old</td>' in week


def test_filters_json_details_and_csv_export(portal_client, machine, events):
    url = reverse("machines:machine-activity", kwargs=_kwargs(machine, "machine"))
    failed = portal_client.get(url, {"timespan": "24h", "status": "Failed"}).content.decode()
    assert '<td class="event-caller">app-9</td>' in failed and '<td class="event-caller">alice</td>' not in failed
    by_caller = portal_client.get(url, {"timespan": "24h", "caller": "ALICE"}).content.decode()
    assert '<td class="event-caller">alice</td>' in by_caller and "app-9</td>" not in by_caller
    by_operation = portal_client.get(url, {"timespan": "24h", "operation": "delete"}).content.decode()
    assert "app-9</td>" in by_operation and "alice</td>" not in by_operation
    assert "&quot;subStatus&quot;" in failed and "ScopeLocked" in failed  # the EventData JSON of the event
    export = portal_client.get(url, {"timespan": "24h", "export": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][:3] == ["Time (UTC)", "Operation name", "Status"]
    assert sorted(row[4] for row in rows[1:]) == ["alice", "app-9"]
    assert json.loads(json.dumps(rows))  # plain text cells


def test_custom_timespan_and_bad_filters(portal_client, machine, events):
    url = reverse("machines:subscription-activity", kwargs=_kwargs(machine, "subscription"))
    start = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    custom = portal_client.get(url, {"timespan": "custom", "start": start, "end": end}).content.decode()
    assert '<td class="event-caller">old</td>' in custom and "alice</td>" not in custom
    too_long = portal_client.get(url, {"timespan": "custom", "start": "2026-01-01T00:00", "end": "2026-06-01T00:00"})
    assert too_long.status_code == 400 and "At most 90 days" in too_long.content.decode()
    assert portal_client.get(url, {"timespan": "forever"}).status_code == 400
    assert portal_client.get(url, {"timespan": "custom"}).status_code == 400
    assert portal_client.get(url, {"caller": "a\x00b"}).status_code == 400


def test_unknown_scope_is_404_and_pages_need_sign_in(portal_client, machine):
    from django.test import Client

    kwargs = {**_kwargs(machine, "machine"), "name": "nope"}
    assert portal_client.get(reverse("machines:machine-activity", kwargs=kwargs)).status_code == 404
    assert portal_client.get(reverse("machines:machine-locks", kwargs=kwargs)).status_code == 404
    assert Client().get(reverse("machines:machine-locks", kwargs=_kwargs(machine, "machine"))).status_code == 302


@pytest.mark.parametrize("scope", ["subscription", "resource-group", "machine"])
def test_locks_page_adds_lists_and_deletes_a_lock(portal_client, admin_user, machine, scope):
    url = reverse(f"machines:{scope}-locks", kwargs=_kwargs(machine, scope))
    assert "This resource has no locks." in portal_client.get(url).content.decode()
    added = portal_client.post(url, {"name": "keep", "level": "CanNotDelete", "notes": "prod"})
    assert added.status_code == 302
    lock = ManagementLock.objects.get()
    assert (lock.name, lock.level, lock.notes, lock.created_by) == ("keep", "CanNotDelete", "prod", admin_user.username)
    page = portal_client.get(url).content.decode()
    assert "<td>keep</td>" in page and "Delete lock keep" in page
    machine_page = portal_client.get(reverse("machines:machine-locks", kwargs=_kwargs(machine, "machine")))
    assert "<td>keep</td>" in machine_page.content.decode()  # inherited locks are listed below their scope
    assert portal_client.post(url, {"delete": "keep"}).status_code == 302
    assert not ManagementLock.objects.exists()
    assert list(ActivityEvent.objects.order_by("id").values_list("operation_name", "caller")) == [
        ("Microsoft.Authorization/locks/write", admin_user.username),
        ("Microsoft.Authorization/locks/delete", admin_user.username),
    ]


def test_bad_lock_input_is_400_and_writes_nothing(portal_client, machine):
    url = reverse("machines:machine-locks", kwargs=_kwargs(machine, "machine"))
    for data in (
        {"name": "a/b", "level": "ReadOnly"},
        {"name": "ok", "level": "Frozen"},
        {"name": "", "level": "ReadOnly"},
    ):
        assert portal_client.post(url, data).status_code == 400
    assert portal_client.post(url, {"delete": "missing"}).status_code == 404
    assert not ManagementLock.objects.exists() and not ActivityEvent.objects.exists()


def test_the_machine_menu_lists_activity_log_and_locks(portal_client, machine):
    html = portal_client.get(reverse("machines:machine-detail", kwargs=_kwargs(machine, "machine"))).content.decode()
    assert ">Activity log</a>" in html and ">Locks</a>" in html


def test_the_resource_group_list_links_each_scopes_activity_log_and_locks(portal_client, machine):
    html = portal_client.get(reverse("machines:resource-group-list")).content.decode()
    for name, kwargs in [
        ("resource-group-activity", _kwargs(machine, "resource-group")),
        ("resource-group-locks", _kwargs(machine, "resource-group")),
        ("subscription-activity", _kwargs(machine, "subscription")),
        ("subscription-locks", _kwargs(machine, "subscription")),
    ]:
        assert reverse(f"machines:{name}", kwargs=kwargs) in html
