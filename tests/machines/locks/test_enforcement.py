"""Locks in the services layer (issue 13): portal and cascading deletes refused with the lock named; heartbeats and
the sweep never blocked; a refused write leaves no change and no Succeeded event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from arcportal.activity.models import ActivityEvent
from machines import services
from machines.locks.enforcement import ScopeLocked
from machines.locks.services import lock_create_or_update, lock_delete
from machines.models import Machine, MachineTag, ResourceGroup
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-a")
    return MachineFactory(resource_group=group, name="m1", last_heartbeat_at=None)


def test_portal_bulk_delete_and_group_delete_are_refused_by_a_machine_lock(machine):
    lock_create_or_update(scope=machine.arm_id, name="hold", level="CanNotDelete", caller="alice")
    with pytest.raises(ScopeLocked, match="hold"):
        services.machines_delete(machine_ids=[machine.pk], actor="alice")
    with pytest.raises(ScopeLocked, match="hold"):
        services.resource_group_delete(resource_group=machine.resource_group, actor="alice")
    assert Machine.objects.filter(pk=machine.pk).exists() and ResourceGroup.objects.filter(name="rg-a").exists()
    assert not ActivityEvent.objects.filter(operation_name__endswith="/delete").exists()


def test_read_only_refuses_tag_writes_and_records_nothing(machine):
    lock_create_or_update(scope=machine.resource_group.arm_id, name="ro", level="ReadOnly")
    before = ActivityEvent.objects.count()
    with pytest.raises(ScopeLocked) as refused:
        services.machine_update_tags(machine=machine, tags={"a": "b"})
    assert refused.value.status == 409 and refused.value.code == "ScopeLocked"
    with pytest.raises(ScopeLocked):
        services.machines_assign_tags(machines=[machine], tags={"a": "b"})
    assert not MachineTag.objects.exists() and ActivityEvent.objects.count() == before


def test_heartbeats_and_the_sweep_are_never_blocked(machine, settings):
    lock_create_or_update(scope=machine.resource_group.subscription.arm_id, name="all-ro", level="ReadOnly")
    beat = timezone.now()
    assert services.machine_record_heartbeat(machine_id=machine.pk, at=beat) == "Connected"
    result = services.machine_status_sweep(now=beat + timedelta(seconds=settings.ARC_OFFLINE_AFTER_SECONDS + 5))
    assert result.transitions.get("Disconnected") == 1
    mirrored = list(
        ActivityEvent.objects.filter(category="ResourceHealth")
        .order_by("event_timestamp")
        .values_list("properties__toStatus", "caller", "resource_id")
    )
    platform = "Microsoft.HybridCompute"
    assert mirrored == [("Connected", platform, machine.arm_id), ("Disconnected", platform, machine.arm_id)]


def test_lock_writes_are_in_the_activity_log_and_deleting_the_lock_frees_the_delete(machine):
    result = lock_create_or_update(scope=machine.arm_id, name="hold", level="CanNotDelete", caller="alice")
    lock_delete(lock=result.instance, caller="alice")
    services.machine_delete(machine=machine, actor="alice")
    assert list(ActivityEvent.objects.order_by("id").values_list("operation_name", "caller")) == [
        ("Microsoft.Authorization/locks/write", "alice"),
        ("Microsoft.Authorization/locks/delete", "alice"),
        ("Microsoft.HybridCompute/machines/delete", "alice"),
    ]


@pytest.mark.parametrize(
    ("name", "level"),
    [("", "ReadOnly"), ("a/b", "ReadOnly"), ("x" * 261, "ReadOnly"), ("ok", "Frozen"), ("ok.", "ReadOnly")],
)
def test_bad_lock_input_is_refused_without_a_write(machine, name, level):
    from arcportal.exceptions import Invalid

    with pytest.raises(Invalid):
        lock_create_or_update(scope=machine.arm_id, name=name, level=level)
    assert not ActivityEvent.objects.exists()
