"""The official Azure SDKs, unmodified, against the portal over TLS (API-CONTRACT.md §1–§7).

Only ``base_url``, the credential (a service principal through ``ClientSecretCredential`` with the portal as its
authority) and the CA bundle differ from talking to Azure.
"""

from __future__ import annotations

import json

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.hybridcompute import HybridComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from django.test import override_settings

from machines.models import Extension, Machine, ResourceGroup


class SDK:
    def __init__(self, server, subscription, role="Owner", scope=None):
        from identity.service_principals import service_principal_create

        created = service_principal_create(display_name="sdk-tests", role=role, scope=scope or subscription.arm_id)
        self.tenant_id = str(subscription.tenant.tenant_id)
        self.subscription_id = str(subscription.subscription_id)
        self.client_id = str(created.service_principal.client_id)
        self.secret = created.secret
        self.server = server
        self.credential = ClientSecretCredential(
            self.tenant_id,
            self.client_id,
            self.secret,
            authority=server.url,
            disable_instance_discovery=True,
            connection_verify=server.ca_file,
        )
        common = {"base_url": server.url, "connection_verify": server.ca_file}
        self.hc = HybridComputeManagementClient(self.credential, self.subscription_id, **common)
        self.rc = ResourceManagementClient(self.credential, self.subscription_id, **common)
        self.subs = SubscriptionClient(self.credential, **common)

    def raw(self, method: str, path: str, **kwargs) -> httpx.Response:
        token = self.credential.get_token("https://management.azure.com/.default").token
        return httpx.request(
            method,
            f"{self.server.url}{path}",
            headers={"Authorization": f"Bearer {token}"},
            verify=self.server.ca_file,
            **kwargs,
        )


@pytest.fixture
def sdk(tls_live_server, subscription):
    return SDK(tls_live_server, subscription)


def test_service_principal_signs_in_and_lists_subscriptions(sdk, subscription):
    token = sdk.credential.get_token("https://management.azure.com/.default")
    assert token.token and token.expires_on > 0
    listed = list(sdk.subs.subscriptions.list())
    assert [s.subscription_id for s in listed] == [str(subscription.subscription_id)]
    got = sdk.subs.subscriptions.get(str(subscription.subscription_id))
    assert got.display_name == subscription.display_name
    assert got.tenant_id == sdk.tenant_id
    assert got.state == "Enabled"


def test_wrong_secret_raises_client_authentication_error(tls_live_server, subscription):
    sdk = SDK(tls_live_server, subscription)
    bad = ClientSecretCredential(
        sdk.tenant_id,
        sdk.client_id,
        "not-the-secret",
        authority=tls_live_server.url,
        disable_instance_discovery=True,
        connection_verify=tls_live_server.ca_file,
    )
    with pytest.raises(ClientAuthenticationError, match="Invalid client secret"):
        bad.get_token("https://management.azure.com/.default")


class BogusCredential:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("not-a-token", 4102444800)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("not-a-token", 4102444800)


def test_bad_token_raises_client_authentication_error(tls_live_server, subscription):
    client = ResourceManagementClient(
        BogusCredential(),
        str(subscription.subscription_id),
        base_url=tls_live_server.url,
        connection_verify=tls_live_server.ca_file,
    )
    with pytest.raises(ClientAuthenticationError) as info:
        client.resource_groups.get("anything")
    assert info.value.status_code == 401
    assert info.value.error.code == "InvalidAuthenticationToken"


def test_resource_group_operations(sdk, subscription):
    rgs = sdk.rc.resource_groups
    created = rgs.create_or_update("rg-sdk", {"location": "eastus", "tags": {"env": "test"}})
    assert created.name == "rg-sdk" and created.location == "eastus" and created.tags == {"env": "test"}
    assert created.properties.provisioning_state == "Succeeded"
    again = rgs.create_or_update("rg-sdk", {"location": "eastus", "tags": {"owner": "me"}})
    assert again.tags == {"owner": "me"}  # PUT replaces tags

    assert rgs.check_existence("rg-sdk") is True
    assert rgs.check_existence("rg-missing") is False
    assert rgs.get("RG-SDK").id == f"/subscriptions/{sdk.subscription_id}/resourceGroups/rg-sdk"
    with pytest.raises(ResourceNotFoundError) as info:
        rgs.get("rg-missing")
    assert info.value.error.code == "ResourceGroupNotFound"

    patched = rgs.update("rg-sdk", {"tags": {"a": "1", "b": "2"}})
    assert patched.tags == {"a": "1", "b": "2"}
    assert [g.name for g in rgs.list()] == ["rg-sdk"]

    sdk.hc.machines.create_or_update("rg-sdk", "vm-in-rg", {"location": "eastus"})
    rgs.begin_delete("rg-sdk").result()
    assert rgs.check_existence("rg-sdk") is False
    assert not Machine.objects.filter(name="vm-in-rg").exists()  # cascaded
    with pytest.raises(ResourceNotFoundError):
        rgs.begin_delete("rg-sdk").result()


def test_machine_operations(sdk, subscription):
    sdk.rc.resource_groups.create_or_update("rg-m", {"location": "westeurope"})
    machines = sdk.hc.machines
    machine = machines.create_or_update(
        "rg-m",
        "vm1",
        {
            "location": "westeurope",
            "tags": {"Datacenter": "dc1", "City": "Paris"},
            "identity": {"type": "SystemAssigned"},
            "properties": {"osProfile": {"computerName": "vm1-host"}, "locationData": {"name": "Paris"}},
        },
    )
    assert machine.name == "vm1" and machine.type == "Microsoft.HybridCompute/machines"
    assert machine.properties.status == "AwaitingConnection"
    assert machine.properties.provisioning_state == "Succeeded"
    assert machine.properties.os_profile.computer_name == "vm1-host"
    assert machine.properties.location_data.name == "Paris"
    assert machine.identity.tenant_id == sdk.tenant_id
    assert machine.system_data.created_by_type == "Application"
    assert machine.system_data.created_at.tzinfo is not None  # RFC 3339 → a datetime, not a raw string
    assert machine.properties.last_status_change.tzinfo is not None

    updated = machines.update("rg-m", "vm1", {"tags": {"only": "this"}})
    assert updated.tags == {"only": "this"}  # PATCH tags replace the whole set
    assert machines.get("rg-m", "VM1").tags == {"only": "this"}
    cleared = machines.update("rg-m", "vm1", {"tags": {}})
    assert not cleared.tags

    assert [m.name for m in machines.list_by_resource_group("rg-m")] == ["vm1"]
    assert [m.name for m in machines.list_by_subscription()] == ["vm1"]
    with pytest.raises(ResourceNotFoundError) as info:
        list(machines.list_by_resource_group("rg-missing"))
    assert info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        machines.get("rg-m", "nope")
    assert info.value.error.code == "ResourceNotFound"

    machines.begin_delete("rg-m", "vm1").result()
    assert not Machine.objects.filter(name="vm1").exists()
    machines.begin_delete("rg-m", "vm1").result()  # idempotent: 204 again, no ResourceNotFoundError


def test_machine_status_is_derived_at_request_time(sdk, subscription):
    from datetime import timedelta

    from django.utils import timezone

    sdk.rc.resource_groups.create_or_update("rg-s", {"location": "eastus"})
    sdk.hc.machines.create_or_update("rg-s", "vm", {"location": "eastus"})
    Machine.objects.filter(name="vm").update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    machine = sdk.hc.machines.get("rg-s", "vm")
    assert machine.properties.status == "Disconnected"  # the sweep never ran: derived, not stored
    Machine.objects.filter(name="vm").update(last_heartbeat_at=timezone.now() - timedelta(days=60))
    assert sdk.hc.machines.get("rg-s", "vm").properties.status == "Expired"
    Machine.objects.filter(name="vm").update(last_heartbeat_at=timezone.now())
    assert sdk.hc.machines.get("rg-s", "vm").properties.status == "Connected"


def test_paging_with_page_size_two_returns_every_item_once(sdk, subscription):
    for index in range(3):
        sdk.rc.resource_groups.create_or_update(f"rg-p{index}", {"location": "eastus"})
    for index in range(5):
        sdk.hc.machines.create_or_update("rg-p0", f"vm{index}", {"location": "eastus"})
    with override_settings(ARM_PAGE_SIZE=2):
        by_group = [m.name for m in sdk.hc.machines.list_by_resource_group("rg-p0")]
        by_sub = [m.name for m in sdk.hc.machines.list_by_subscription()]
        groups = [g.name for g in sdk.rc.resource_groups.list()]
        page = sdk.raw("GET", f"/subscriptions/{sdk.subscription_id}/resourcegroups?api-version=2025-04-01").json()
    assert by_group == [f"vm{i}" for i in range(5)]
    assert by_sub == [f"vm{i}" for i in range(5)]
    assert groups == ["rg-p0", "rg-p1", "rg-p2"]
    assert len(page["value"]) == 2
    assert page["nextLink"].startswith(f"{sdk.server.url}/subscriptions/")  # absolute
    assert "$skiptoken=2" in page["nextLink"]


def _agent_reports(name: str, state: str, message: str = "done") -> None:
    """What the agent plane records when the machine's agent reports (tests/machines/test_goal_state.py drives the
    real endpoints; here the SDK's side of the LRO is under test)."""
    from machines.services import extension_report_record

    extension = Extension.objects.get(name=name)
    extension_report_record(
        machine=extension.machine,
        name=name,
        report={
            "sequence": extension.sequence,
            "state": state,
            "status": {"code": f"ProvisioningState/{state.lower()}", "level": "Info", "message": message},
            "handlerVersion": "2.1",
        },
    )


def test_extension_lro_operations_end_when_the_agent_reports_and_never_return_protected_settings(sdk, subscription):
    from django.utils import timezone

    sdk.rc.resource_groups.create_or_update("rg-x", {"location": "eastus"})
    sdk.hc.machines.create_or_update("rg-x", "vm", {"location": "eastus"})
    Machine.objects.filter(name="vm").update(last_heartbeat_at=timezone.now())  # its agent is Connected
    extensions = sdk.hc.machine_extensions
    body = {
        "location": "eastus",
        "properties": {
            "publisher": "Microsoft.Azure.Extensions",
            "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "settings": {"commandToExecute": "echo hi"},
            "protectedSettings": {"secret": "s3cr3t-value"},
        },
    }
    poller = extensions.begin_create_or_update("rg-x", "vm", "script", body, polling_interval=0)
    assert not poller.done()
    assert extensions.get("rg-x", "vm", "script").properties.provisioning_state == "Creating"
    _agent_reports("script", "Succeeded", "Enable succeeded: hi")
    created = poller.result()
    assert created.properties.provisioning_state == "Succeeded"
    assert created.properties.instance_view.status.message == "Enable succeeded: hi"
    assert created.properties.settings == {"commandToExecute": "echo hi"}
    assert created.properties.protected_settings is None

    poller = extensions.begin_update(
        "rg-x",
        "vm",
        "script",
        {"properties": {"settings": {"commandToExecute": "echo bye"}, "protectedSettings": {"secret": "n3w"}}},
        polling_interval=0,
    )
    assert extensions.get("rg-x", "vm", "script").properties.provisioning_state == "Updating"
    _agent_reports("script", "Failed", "Enable failed: exit 3")
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    assert failed.value.error.code == "ExtensionOperationFailed" and "exit 3" in failed.value.error.message
    updated = extensions.get("rg-x", "vm", "script")
    assert updated.properties.settings == {"commandToExecute": "echo bye"}
    assert updated.properties.type_handler_version == "2.1"  # absent members stay
    assert updated.properties.provisioning_state == "Failed"
    assert [e.name for e in extensions.list("rg-x", "vm")] == ["script"]

    for path in (
        "/providers/Microsoft.HybridCompute/machines/vm/extensions/script",
        "/providers/Microsoft.HybridCompute/machines/vm/extensions",
        "/providers/Microsoft.HybridCompute/machines/vm",
        "/providers/Microsoft.HybridCompute/machines",
    ):
        url = f"/subscriptions/{sdk.subscription_id}/resourceGroups/rg-x{path}?api-version=2026-07-15"
        text = sdk.raw("GET", url).text
        assert "protectedSettings" not in text and "n3w" not in text and "s3cr3t" not in text
    stored = Extension.objects.get(name="script")
    assert "n3w" not in stored.protected_settings_encrypted
    from machines.services import extension_protected_settings

    assert extension_protected_settings(extension=stored) == {"secret": "n3w"}

    with pytest.raises(ResourceNotFoundError) as info:
        extensions.get("rg-x", "ghost", "script")
    assert info.value.error.code == "ParentResourceNotFound"

    poller = extensions.begin_delete("rg-x", "vm", "script", polling_interval=0)
    assert extensions.get("rg-x", "vm", "script").properties.provisioning_state == "Deleting"
    _agent_reports("script", "Deleted")
    poller.result()
    assert not Extension.objects.exists()
    extensions.begin_delete("rg-x", "vm", "script", polling_interval=0).result()  # idempotent 204
    with pytest.raises(ResourceNotFoundError):
        extensions.get("rg-x", "vm", "script")


def test_extension_on_a_machine_that_is_not_connected_fails_at_once(sdk, subscription):
    sdk.rc.resource_groups.create_or_update("rg-x", {"location": "eastus"})
    sdk.hc.machines.create_or_update("rg-x", "vm", {"location": "eastus"})  # no agent: AwaitingConnection
    body = {"location": "eastus", "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript"}}
    with pytest.raises(HttpResponseError) as info:
        sdk.hc.machine_extensions.begin_create_or_update("rg-x", "vm", "e", body, polling_interval=0).result()
    assert info.value.error.code == "MachineNotConnected"
    assert "is not connected (status AwaitingConnection)" in info.value.error.message
    shown = sdk.hc.machine_extensions.get("rg-x", "vm", "e")
    assert shown.properties.provisioning_state == "Failed"
    assert "not connected" in shown.properties.instance_view.status.message
    sdk.hc.machine_extensions.begin_delete("rg-x", "vm", "e", polling_interval=0).result()  # never handed over
    assert not Extension.objects.exists()


def test_resource_ids_parse_with_azure_tools(sdk, subscription):
    from azure.mgmt.core.tools import parse_resource_id

    sdk.rc.resource_groups.create_or_update("rg-id", {"location": "eastus"})
    machine = sdk.hc.machines.create_or_update("rg-id", "vm", {"location": "eastus"})
    parsed = parse_resource_id(machine.id)
    assert parsed["subscription"] == sdk.subscription_id
    assert parsed["resource_group"] == "rg-id"
    assert parsed["namespace"] == "Microsoft.HybridCompute"
    assert parsed["name"] == "vm"


def test_sdk_errors_carry_arm_codes(sdk, subscription):
    with pytest.raises(HttpResponseError) as info:
        sdk.rc.resource_groups.create_or_update("rg-bad", {"location": "atlantis"})
    assert info.value.status_code == 400
    assert info.value.error.code == "LocationNotAvailableForResourceGroup"
    assert not ResourceGroup.objects.filter(name="rg-bad").exists()
    response = sdk.raw("GET", f"/subscriptions/{sdk.subscription_id}/resourcegroups")
    assert response.status_code == 400
    assert json.loads(response.text)["error"]["code"] == "MissingApiVersionParameter"
