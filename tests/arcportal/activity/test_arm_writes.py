"""Every ARM write is one transaction with its event (issue 13): a write that fails after its service wrote leaves
neither the change nor a Succeeded event, only the Failed one; a write whose services record nothing gets one
event named after its RBAC action; reads and unauthenticated requests record nothing."""

from __future__ import annotations

import pytest

from arcportal.activity.models import ActivityEvent
from arcportal.arm.errors import ArmError
from machines.api.views.base import ArmOperation
from machines.models import Machine
from tests.armclient import API, RG_API, machine_path, rg_path
from tests.machines.factories import ResourceGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(subscription):
    return ResourceGroupFactory(subscription=subscription, name="rg-tx", location="westeurope")


def test_a_write_failing_after_its_service_rolls_back_change_and_event(
    arm, admin_user, subscription, group, monkeypatch
):
    def fail(self, machine):
        raise ArmError("Rendering failed after the write.", code="InjectedFailure", status=409)

    monkeypatch.setattr(ArmOperation, "render_machine", fail)
    response = arm.put(f"{machine_path(subscription, 'rg-tx', 'vm1')}?{API}", {"location": "westeurope"})
    assert response.status_code == 409
    assert not Machine.objects.exists()
    events = list(ActivityEvent.objects.values_list("operation_name", "status", "caller"))
    assert events == [("Microsoft.HybridCompute/machines/write", "Failed", admin_user.username)]
    assert ActivityEvent.objects.get().error == {
        "code": "InjectedFailure",
        "message": "Rendering failed after the write.",
    }


def test_a_successful_write_records_exactly_one_event_with_the_correlation_id(arm, subscription, group):
    response = arm.put(
        f"{machine_path(subscription, 'rg-tx', 'vm1')}?{API}",
        {"location": "westeurope"},
        HTTP_X_MS_CORRELATION_REQUEST_ID="corr-42",
    )
    assert response.status_code == 200 and response["x-ms-correlation-request-id"] == "corr-42"
    event = ActivityEvent.objects.get()
    assert (event.operation_name, event.status, event.correlation_id) == (
        "Microsoft.HybridCompute/machines/write",
        "Succeeded",
        "corr-42",
    )


def test_reads_and_unauthenticated_writes_record_nothing(arm, arm_as, subscription, group):
    assert arm.get(f"{rg_path(subscription, 'rg-tx')}?{RG_API}").status_code == 200
    anonymous = arm_as(None)
    assert anonymous.put(f"{rg_path(subscription, 'rg-x')}?{RG_API}", {"location": "westeurope"}).status_code == 401
    assert not ActivityEvent.objects.exists()


def test_a_write_without_its_own_events_gets_one_named_after_its_action(arm, subscription, group, monkeypatch):
    from machines.api.views import resource_groups
    from machines.services import resource_groups as rg_services

    monkeypatch.setattr(rg_services, "_recorded", lambda *args, **kwargs: None)
    assert resource_groups  # the view module is loaded
    response = arm.patch(f"{rg_path(subscription, 'rg-tx')}?{RG_API}", {"tags": {"a": "b"}})
    assert response.status_code == 200
    event = ActivityEvent.objects.get()
    assert event.operation_name == "Microsoft.Resources/subscriptions/resourceGroups/write"
    assert event.properties == {"statusCode": 200, "httpMethod": "PATCH"}
