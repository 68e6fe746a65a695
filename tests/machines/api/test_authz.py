"""Authorization on the ARM plane: 403 AuthorizationFailed for authenticated callers without the permission.

A Reader may read but never write; an Azure Connected Machine Onboarding principal may create (and read) machines in
its resource group and nothing else.
"""

from __future__ import annotations

import json

import pytest

from machines.models import Extension, Machine, ResourceGroup
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, sub_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(arm, subscription):
    """Two groups, a machine with an extension in each."""
    for group in ("rg-a", "rg-b"):
        assert arm.put(f"{rg_path(subscription, group)}?{RG_API}", {"location": "eastus"}).status_code == 201
        assert arm.put(f"{machine_path(subscription, group, 'vm')}?{API}", {"location": "eastus"}).status_code == 200
        ext = f"{machine_path(subscription, group, 'vm')}/extensions/e?{API}"
        assert arm.put(ext, {"properties": {"type": "t"}}).status_code == 202  # no agent: Failed at once
    return subscription


def forbidden(response):
    assert response.status_code == 403, (response.status_code, response.content)
    error = json.loads(response.content)["error"]
    assert error["code"] == "AuthorizationFailed"
    assert "does not have authorization" in error["message"]


def every_write(subscription, group: str):
    machine = machine_path(subscription, group, "vm")
    return [
        ("PUT", f"{rg_path(subscription, group)}?{RG_API}", {"location": "eastus"}),
        ("PUT", f"{rg_path(subscription, 'rg-new')}?{RG_API}", {"location": "eastus"}),
        ("PATCH", f"{rg_path(subscription, group)}?{RG_API}", {"tags": {"x": "y"}}),
        ("DELETE", f"{rg_path(subscription, group)}?{RG_API}", None),
        ("PUT", f"{machine}?{API}", {"location": "eastus"}),
        ("PUT", f"{machine_path(subscription, group, 'vm-new')}?{API}", {"location": "eastus"}),
        ("PATCH", f"{machine}?{API}", {"tags": {"x": "y"}}),
        ("DELETE", f"{machine}?{API}", None),
        ("PUT", f"{machine}/extensions/e?{API}", {"properties": {"type": "t"}}),
        ("PATCH", f"{machine}/extensions/e?{API}", {"tags": {}}),
        ("DELETE", f"{machine}/extensions/e?{API}", None),
    ]


def test_reader_is_forbidden_every_write_and_changes_nothing(world, sp_token):
    token, _ = sp_token("Reader")
    reader = ArmClient(token)
    for method, path, body in every_write(world, "rg-a"):
        forbidden(reader.request(method, path, body))
    assert ResourceGroup.objects.count() == 2 and Machine.objects.count() == 2 and Extension.objects.count() == 2
    assert not ResourceGroup.objects.filter(name="rg-new").exists()


def test_reader_can_read_everything_in_scope(world, sp_token):
    token, _ = sp_token("Reader")
    reader = ArmClient(token)
    assert reader.get(f"{machine_path(world, 'rg-a', 'vm')}?{API}").status_code == 200
    assert reader.head(f"{rg_path(world, 'rg-b')}?{RG_API}").status_code == 204
    assert len(reader.get(f"{sub_path(world)}/providers/Microsoft.HybridCompute/machines?{API}").json()["value"]) == 2
    assert len(reader.get(f"{sub_path(world)}/resourcegroups?{RG_API}").json()["value"]) == 2
    assert reader.get(f"{machine_path(world, 'rg-a', 'vm')}/extensions?{API}").status_code == 200


def test_contributor_in_one_group_cannot_touch_the_other(world, sp_token):
    token, _ = sp_token("Contributor", f"{world.arm_id}/resourceGroups/rg-a")
    contributor = ArmClient(token)
    assert contributor.patch(f"{machine_path(world, 'rg-a', 'vm')}?{API}", {"tags": {"ok": "1"}}).status_code == 200
    forbidden(contributor.patch(f"{machine_path(world, 'rg-b', 'vm')}?{API}", {"tags": {"no": "1"}}))
    forbidden(contributor.get(f"{machine_path(world, 'rg-b', 'vm')}?{API}"))
    listed = contributor.get(f"{sub_path(world)}/providers/Microsoft.HybridCompute/machines?{API}").json()["value"]
    assert [m["id"].split("/")[4] for m in listed] == ["rg-a"]  # filtered to what it may read
    groups = contributor.get(f"{sub_path(world)}/resourcegroups?{RG_API}").json()["value"]
    assert [g["name"] for g in groups] == ["rg-a"]


def test_onboarding_principal_creates_machines_in_its_group_and_nothing_else(world, sp_token):
    token, principal = sp_token("Azure Connected Machine Onboarding", f"{world.arm_id}/resourceGroups/rg-a")
    onboarding = ArmClient(token)
    created = onboarding.put(f"{machine_path(world, 'rg-a', 'server-1')}?{API}", {"location": "eastus"})
    assert created.status_code == 200
    assert created.json()["systemData"]["createdByType"] == "Application"
    assert created.json()["systemData"]["createdBy"] == str(principal.client_id)
    assert onboarding.get(f"{machine_path(world, 'rg-a', 'server-1')}?{API}").status_code == 200

    # Not another resource group.
    forbidden(onboarding.put(f"{machine_path(world, 'rg-b', 'server-2')}?{API}", {"location": "eastus"}))
    forbidden(onboarding.get(f"{machine_path(world, 'rg-b', 'vm')}?{API}"))
    # Not resource-group writes (nor reads: it holds no right on groups).
    forbidden(onboarding.put(f"{rg_path(world, 'rg-a')}?{RG_API}", {"location": "eastus"}))
    forbidden(onboarding.patch(f"{rg_path(world, 'rg-a')}?{RG_API}", {"tags": {}}))
    forbidden(onboarding.delete(f"{rg_path(world, 'rg-a')}?{RG_API}"))
    forbidden(onboarding.put(f"{rg_path(world, 'rg-c')}?{RG_API}", {"location": "eastus"}))
    forbidden(onboarding.get(f"{rg_path(world, 'rg-a')}?{RG_API}"))
    # Not extensions, not deletes.
    machine = machine_path(world, "rg-a", "server-1")
    forbidden(onboarding.put(f"{machine}/extensions/e?{API}", {"properties": {"type": "t"}}))
    forbidden(onboarding.get(f"{machine}/extensions?{API}"))
    forbidden(onboarding.delete(f"{machine_path(world, 'rg-a', 'vm')}/extensions/e?{API}"))
    forbidden(onboarding.delete(f"{machine}?{API}"))

    assert set(Machine.objects.values_list("name", flat=True)) == {"vm", "server-1"}
    assert Machine.objects.get(name="server-1").resource_group.name == "rg-a"
    assert Extension.objects.count() == 2 and ResourceGroup.objects.count() == 2


def test_subscription_scoped_owner_cannot_reach_another_subscription(world, sp_token, tenant):
    from machines.models import Subscription

    other = Subscription.objects.create(tenant=tenant, display_name="Other")
    token, _ = sp_token("Owner")
    owner = ArmClient(token)
    forbidden(owner.put(f"/subscriptions/{other.subscription_id}/resourcegroups/x?{RG_API}", {"location": "eastus"}))
    listed = owner.get(f"/subscriptions?{RG_API}").json()["value"]
    assert [s["subscriptionId"] for s in listed] == [str(world.subscription_id)]


def test_portal_users_are_owner_of_everything(world, arm, tenant):
    from machines.models import Subscription

    other = Subscription.objects.create(tenant=tenant, display_name="Other")
    response = arm.put(f"/subscriptions/{other.subscription_id}/resourcegroups/x?{RG_API}", {"location": "eastus"})
    assert response.status_code == 201
    assert len(arm.get(f"/subscriptions?{RG_API}").json()["value"]) == 2


def test_machine_bodies_carry_extensions_only_for_callers_who_may_read_extensions(world, sp_token, arm):
    """Issue 10 item 7: the machine GET/list/PUT bodies' ``resources`` array is extension data (settings included);
    the Onboarding role may not read extensions, so it gets machine bodies without it."""
    for group in ("rg-a", "rg-b"):
        path = f"{machine_path(world, group, 'vm')}/extensions/e?{API}"
        assert arm.put(path, {"properties": {"type": "t", "settings": {"token": "s3cret-setting"}}}).status_code == 202
    token, _ = sp_token("Azure Connected Machine Onboarding")
    onboarding = ArmClient(token)
    machine = f"{machine_path(world, 'rg-a', 'vm')}?{API}"
    responses = [
        onboarding.get(machine),
        onboarding.get(f"{sub_path(world)}/providers/Microsoft.HybridCompute/machines?{API}"),
        onboarding.get(f"{rg_path(world, 'rg-a')}/providers/Microsoft.HybridCompute/machines?{API}"),
        onboarding.put(machine, {"location": "eastus"}),
        onboarding.patch(machine, {"tags": {"a": "b"}}),
    ]
    for response in responses:
        assert response.status_code == 200, response.content
        assert b"s3cret-setting" not in response.content and b"/extensions/" not in response.content
    assert "resources" not in onboarding.get(machine).json()

    reader_token, _ = sp_token("Reader")
    for client in (ArmClient(reader_token), arm):
        body = client.get(machine).json()
        assert [r["properties"]["settings"] for r in body["resources"]] == [{"token": "s3cret-setting"}]
