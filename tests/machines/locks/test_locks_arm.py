"""Bad input on the locks ARM API (issue 13, "Bad input"): specific 4xx, ARM error body, nothing written."""

from __future__ import annotations

import pytest

from arcportal.activity.models import ActivityEvent
from machines.locks.models import ManagementLock
from tests.armclient import sub_path
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db
API = "api-version=2020-05-01"


@pytest.fixture
def group(subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-l")
    MachineFactory(resource_group=group, name="m1")
    return group


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "InvalidRequestContent"),
        ({"properties": []}, 400, "InvalidRequestContent"),
        ({"properties": {"level": "Frozen"}}, 400, "InvalidRequestContent"),
        ({"properties": {"level": {"x": 1}}}, 400, "InvalidRequestContent"),
        ({"properties": {"level": "ReadOnly", "notes": 5}}, 400, "InvalidNotes"),
        ({"properties": {"level": "ReadOnly", "notes": "n" * 513}}, 400, "InvalidNotes"),
        ({"properties": {"level": "ReadOnly", "owners": "me"}}, 400, "InvalidRequestContent"),
        ({"properties": {"level": "ReadOnly", "owners": [{"applicationId": 5}]}}, 400, "InvalidOwner"),
    ],
)
def test_bad_lock_bodies_are_400_and_write_nothing(arm, subscription, group, body, status, code):
    response = arm.put(f"{group.arm_id}/providers/Microsoft.Authorization/locks/l1?{API}", body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert not ManagementLock.objects.exists()
    assert not ActivityEvent.objects.filter(status="Succeeded").exists()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/resourceGroups/nope/providers/Microsoft.Authorization/locks/l1", 404, "ResourceGroupNotFound"),
        (
            "/resourceGroups/rg-l/providers/Microsoft.HybridCompute/machines/nope/providers/Microsoft.Authorization/locks/l1",
            404,
            "ResourceNotFound",
        ),
        ("/resourceGroups/rg-l/providers/Microsoft.Authorization/locks/a%3Ab", 400, "InvalidRequestContent"),
    ],
)
def test_missing_scopes_and_bad_names(arm, subscription, group, path, status, code):
    response = arm.put(f"{sub_path(subscription)}{path}?{API}", {"properties": {"level": "ReadOnly"}})
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert not ManagementLock.objects.exists()


def test_unsupported_list_filter_and_missing_lock(arm, subscription, group):
    base = f"{group.arm_id}/providers/Microsoft.Authorization/locks"
    bad = arm.get(f"{base}?{API}&$filter=level eq 'ReadOnly'")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidFilter"
    assert arm.get(f"{base}?{API}&$filter=atScope()").json() == {"value": []}
    missing = arm.get(f"{base}/none?{API}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "LockNotFound"
    assert arm.delete(f"{base}/none?{API}").status_code == 204
