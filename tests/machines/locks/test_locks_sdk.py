"""Management locks through ``azure-mgmt-resource-locks``' ``ManagementLockClient``, unmodified, over TLS (issue 13):
CanNotDelete blocks deleting a machine and its resource group, ReadOnly blocks writes, 409 ScopeLocked names the
lock; only Owner may create or delete locks."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from machines.locks.models import ManagementLock
from tests.machines.api.test_sdk import SDK
from tests.machines.factories import MachineFactory, ResourceGroupFactory


def locks_client(sdk: SDK) -> ManagementLockClient:
    return ManagementLockClient(
        sdk.credential, sdk.subscription_id, base_url=sdk.server.url, connection_verify=sdk.server.ca_file
    )


@pytest.fixture
def sdk(tls_live_server, subscription):
    return SDK(tls_live_server, subscription)


@pytest.fixture
def group(subscription):
    return ResourceGroupFactory(subscription=subscription, name="rg-locked")


def test_can_not_delete_blocks_the_machine_and_its_group_until_removed(sdk, group):
    MachineFactory(resource_group=group, name="web01")
    client = locks_client(sdk)
    created = client.management_locks.create_or_update_at_resource_group_level(
        "rg-locked", "keep-it", ManagementLockObject(level="CanNotDelete", notes="production")
    )
    assert (created.name, created.level, created.notes) == ("keep-it", "CanNotDelete", "production")
    assert created.id.lower() == f"{group.arm_id}/providers/Microsoft.Authorization/locks/keep-it".lower()
    assert created.type == "Microsoft.Authorization/locks"
    got = client.management_locks.get_at_resource_group_level("rg-locked", "keep-it")
    assert got.level == "CanNotDelete"
    assert [lock.name for lock in client.management_locks.list_at_resource_group_level("rg-locked")] == ["keep-it"]

    with pytest.raises(HttpResponseError) as refused:
        sdk.hc.machines.begin_delete("rg-locked", "web01").result()
    assert refused.value.status_code == 409 and refused.value.error.code == "ScopeLocked"
    assert "keep-it" in refused.value.error.message
    with pytest.raises(HttpResponseError) as refused_group:
        sdk.rc.resource_groups.begin_delete("rg-locked").result()
    assert refused_group.value.status_code == 409 and refused_group.value.error.code == "ScopeLocked"
    assert sdk.hc.machines.get("rg-locked", "web01").name == "web01"
    # Writes are still allowed under CanNotDelete.
    assert sdk.hc.machines.update("rg-locked", "web01", {"tags": {"env": "prod"}}).tags == {"env": "prod"}

    client.management_locks.delete_at_resource_group_level("rg-locked", "keep-it")
    sdk.hc.machines.begin_delete("rg-locked", "web01").result()
    sdk.rc.resource_groups.begin_delete("rg-locked").result()
    assert not ManagementLock.objects.exists()


def test_a_lock_on_a_machine_blocks_the_cascading_delete_of_its_group(sdk, group):
    MachineFactory(resource_group=group, name="db01")
    client = locks_client(sdk)
    client.management_locks.create_or_update_at_resource_level(
        "rg-locked", "Microsoft.HybridCompute", "", "machines", "db01", "db-lock", {"level": "CanNotDelete"}
    )
    with pytest.raises(HttpResponseError) as refused:
        sdk.rc.resource_groups.begin_delete("rg-locked").result()
    assert refused.value.status_code == 409 and "db-lock" in refused.value.error.message
    listed = client.management_locks.list_at_resource_level(
        "rg-locked", "Microsoft.HybridCompute", "", "machines", "db01"
    )
    assert [lock.name for lock in listed] == ["db-lock"]


def test_read_only_blocks_writes_by_scope_and_subscription_locks_apply_below(sdk, group):
    MachineFactory(resource_group=group, name="app01")
    client = locks_client(sdk)
    machine_scope = f"{group.arm_id}/providers/Microsoft.HybridCompute/machines/app01"
    client.management_locks.create_or_update_by_scope(machine_scope, "frozen", {"level": "ReadOnly"})
    assert client.management_locks.get_by_scope(machine_scope, "frozen").level == "ReadOnly"
    with pytest.raises(HttpResponseError) as refused:
        sdk.hc.machines.update("rg-locked", "app01", {"tags": {"a": "b"}})
    assert refused.value.status_code == 409 and refused.value.error.code == "ScopeLocked"
    assert "frozen" in refused.value.error.message
    assert [lock.name for lock in client.management_locks.list_by_scope(machine_scope)] == ["frozen"]
    client.management_locks.delete_by_scope(machine_scope, "frozen")
    assert sdk.hc.machines.update("rg-locked", "app01", {"tags": {"a": "b"}}).tags == {"a": "b"}

    client.management_locks.create_or_update_at_subscription_level("sub-ro", {"level": "ReadOnly"})
    with pytest.raises(HttpResponseError) as refused_put:
        sdk.rc.resource_groups.create_or_update("rg-new", {"location": "westeurope"})
    assert refused_put.value.status_code == 409 and "sub-ro" in refused_put.value.error.message
    assert [lock.name for lock in client.management_locks.list_at_subscription_level()] == ["sub-ro"]
    client.management_locks.delete_at_subscription_level("sub-ro")
    assert sdk.rc.resource_groups.create_or_update("rg-new", {"location": "westeurope"}).name == "rg-new"


def test_only_an_owner_may_create_or_delete_locks(tls_live_server, subscription, group):
    contributor = SDK(tls_live_server, subscription, role="Contributor")
    client = locks_client(contributor)
    with pytest.raises(HttpResponseError) as refused:
        client.management_locks.create_or_update_at_resource_group_level("rg-locked", "mine", {"level": "ReadOnly"})
    assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"
    assert not ManagementLock.objects.exists()
    owner = locks_client(SDK(tls_live_server, subscription))
    owner.management_locks.create_or_update_at_resource_group_level("rg-locked", "theirs", {"level": "ReadOnly"})
    with pytest.raises(HttpResponseError) as refused_delete:
        client.management_locks.delete_at_resource_group_level("rg-locked", "theirs")
    assert refused_delete.value.status_code == 403
    assert [lock.name for lock in client.management_locks.list_at_resource_group_level("rg-locked")] == ["theirs"]
