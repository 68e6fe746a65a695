"""The activity log through ``azure-mgmt-monitor``'s ``activity_logs.list``, unmodified, over TLS (issue 13): every
operation with its caller (app id), correlation id and status; a Reader's refused writes with ``AuthorizationFailed``;
filters by resource group, resource and correlation id; ``$select``; paging; bad filters answered 400."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.monitor import MonitorManagementClient
from django.test import override_settings
from django.utils import timezone

from tests.machines.api.test_sdk import SDK


def monitor(sdk: SDK) -> MonitorManagementClient:
    return MonitorManagementClient(
        sdk.credential, sdk.subscription_id, base_url=sdk.server.url, connection_verify=sdk.server.ca_file
    )


def window(**terms: str) -> str:
    now = timezone.now()
    text = (
        f"eventTimestamp ge '{(now - timedelta(hours=1)).isoformat()}' and "
        f"eventTimestamp le '{(now + timedelta(minutes=5)).isoformat()}'"
    )
    return text + "".join(f" and {name} eq '{value}'" for name, value in terms.items())


@pytest.fixture
def owner(tls_live_server, subscription):
    return SDK(tls_live_server, subscription)


def test_operations_and_refused_ones_are_listed_with_the_callers_app_id(owner, tls_live_server, subscription):
    owner.rc.resource_groups.create_or_update("rg-audit", {"location": "westeurope"})
    owner.hc.machines.create_or_update(
        "rg-audit", "vm1", {"location": "westeurope"}, headers={"x-ms-correlation-request-id": "corr-vm1-put"}
    )
    reader = SDK(tls_live_server, subscription, role="Reader", scope=f"{subscription.arm_id}/resourceGroups/rg-audit")
    assert reader.hc.machines.get("rg-audit", "vm1").name == "vm1"
    with pytest.raises(HttpResponseError) as refused:
        reader.hc.machines.update("rg-audit", "vm1", {"tags": {"x": "y"}})
    assert refused.value.error.code == "AuthorizationFailed"
    with pytest.raises(HttpResponseError):
        reader.rc.resource_groups.create_or_update("rg-elsewhere", {"location": "westeurope"})

    events = list(monitor(owner).activity_logs.list(filter=window(resourceGroupName="rg-audit")))
    seen = [(e.operation_name.value, e.status.value, e.caller) for e in events]
    assert ("Microsoft.Resources/subscriptions/resourceGroups/write", "Succeeded", owner.client_id) in seen
    assert ("Microsoft.HybridCompute/machines/write", "Succeeded", owner.client_id) in seen
    assert ("Microsoft.HybridCompute/machines/write", "Failed", reader.client_id) in seen
    failed = next(e for e in events if e.caller == reader.client_id)
    assert failed.sub_status.value == "AuthorizationFailed" and failed.level == "Error"
    assert failed.resource_id.lower().endswith("/machines/vm1") and failed.http_request.client_ip_address
    assert failed.event_timestamp <= timezone.now() + timedelta(minutes=1)
    assert all(e.resource_group_name == "rg-audit" for e in events)
    # Newest first.
    assert [e.event_timestamp for e in events] == sorted((e.event_timestamp for e in events), reverse=True)
    # The write outside the reader's scope is in the subscription's log, not in rg-audit's.
    everything = list(monitor(owner).activity_logs.list(filter=window()))
    assert any(e.caller == reader.client_id and "rg-elsewhere" in e.resource_id for e in everything)

    by_correlation = list(monitor(owner).activity_logs.list(filter=window(correlationId="corr-vm1-put")))
    assert [(e.operation_name.value, e.correlation_id) for e in by_correlation] == [
        ("Microsoft.HybridCompute/machines/write", "corr-vm1-put")
    ]
    machine_id = f"{subscription.arm_id}/resourceGroups/rg-audit/providers/Microsoft.HybridCompute/machines/vm1"
    by_resource = list(monitor(owner).activity_logs.list(filter=window(resourceUri=machine_id)))
    assert {e.resource_id.lower() for e in by_resource} == {machine_id.lower()} and len(by_resource) == 2


def test_select_and_paging(owner):
    for index in range(5):
        owner.rc.resource_groups.create_or_update(f"rg-page-{index}", {"location": "westeurope"})
    with override_settings(ARM_PAGE_SIZE=2):
        events = list(
            monitor(owner).activity_logs.list(
                filter=window(resourceProvider="Microsoft.Resources"), select="eventTimestamp,operationName,resourceId"
            )
        )
    assert len(events) == 5 and len({e.resource_id for e in events}) == 5
    assert events[0].caller is None and events[0].operation_name.value.endswith("resourceGroups/write")
    # Without a provider filter the subscription's log also holds the tenant's sign-ins (the SDK's own).
    everything = list(monitor(owner).activity_logs.list(filter=window()))
    assert any(e.operation_name.value.endswith("signIn/action") and e.caller == owner.client_id for e in everything)


@pytest.mark.parametrize(
    ("odata", "code"),
    [
        ("eventTimestamp ge '2026-01-01T00:00:00Z' or status eq 'Failed'", "InvalidFilterParameter"),
        ("eventTimestamp ge '2026-01-01T00:00:00Z' and operationName eq 'x'", "InvalidFilterParameter"),
        ("resourceGroupName eq 'rg'", "InvalidFilterParameter"),
        ("eventTimestamp ge 'last week'", "InvalidFilterParameter"),
        ("eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2026-06-01T00:00:00Z'", "InvalidTimeRange"),
    ],
)
def test_unsupported_or_malformed_filters_are_400(owner, odata, code):
    with pytest.raises(HttpResponseError) as refused:
        list(monitor(owner).activity_logs.list(filter=odata))
    assert refused.value.status_code == 400 and refused.value.error.code == code
