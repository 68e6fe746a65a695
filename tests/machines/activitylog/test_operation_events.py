"""Extension operations in the activity log (issue 13): Started when handed to the agent, then the agent's result
(Succeeded/Failed) under the same operation name; a locked machine refuses the write before anything starts."""

from __future__ import annotations

import pytest

from arcportal.activity.models import ActivityEvent
from machines.activity import AGENT_CALLER
from machines.locks.enforcement import ScopeLocked
from machines.locks.services import lock_create_or_update
from machines.services.extensions import extension_create_or_update, extension_report_record
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

PROPERTIES = {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}


@pytest.fixture
def machine(subscription):
    return MachineFactory(resource_group=ResourceGroupFactory(subscription=subscription, name="rg-ext"), name="m1")


def test_an_extension_install_is_started_then_reported(machine):
    written = extension_create_or_update(machine=machine, name="script", properties=PROPERTIES)
    extension = written.instance
    extension_report_record(
        machine=machine,
        name="script",
        report={"sequence": extension.sequence, "state": "Succeeded", "status": {"code": "0", "message": "ok"}},
    )
    events = list(ActivityEvent.objects.order_by("id").values_list("operation_name", "status", "caller"))
    operation = "Microsoft.HybridCompute/machines/extensions/write"
    assert events == [(operation, "Started", ""), (operation, "Succeeded", AGENT_CALLER)]
    assert {e.resource_id for e in ActivityEvent.objects.all()} == {f"{machine.arm_id}/extensions/script"}


def test_a_read_only_machine_refuses_an_extension_before_it_starts(machine):
    lock_create_or_update(scope=machine.arm_id, name="ro", level="ReadOnly")
    with pytest.raises(ScopeLocked):
        extension_create_or_update(machine=machine, name="script", properties=PROPERTIES)
    assert not ActivityEvent.objects.exclude(operation_name__startswith="Microsoft.Authorization").exists()
