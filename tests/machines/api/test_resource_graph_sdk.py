"""``azure-mgmt-resourcegraph`` unmodified against the portal over TLS: paging with ``$skipToken``, the table format,
a service principal scoped to one resource group seeing only its rows, a parser error with its position."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions
from django.utils import timezone

from tests.machines.api.test_sdk import SDK
from tests.machines.graph.fleet import seed_fleet


def graph_client(sdk: SDK) -> ResourceGraphClient:
    return ResourceGraphClient(sdk.credential, base_url=sdk.server.url, connection_verify=sdk.server.ca_file)


@pytest.fixture
def fleet(tls_live_server, subscription):
    return seed_fleet(subscription=subscription, now=timezone.now())


def test_paging_with_skip_token_through_the_sdk(tls_live_server, subscription, fleet):
    client = graph_client(SDK(tls_live_server, subscription))
    query = "Resources | project name, type | order by name asc"
    expected = sorted(r["name"] for r in fleet.resources() if r["subscriptionId"] == str(subscription.subscription_id))
    names, token, pages = [], None, 0
    while True:
        response = client.resources(QueryRequest(query=query, options=QueryRequestOptions(top=4, skip_token=token)))
        assert response.total_records == len(expected)
        assert response.count == len(response.data) and response.result_truncated == "false"
        names += [row["name"] for row in response.data]
        pages += 1
        token = response.skip_token
        if not token:
            break
    assert pages == 3 and names == expected


def test_table_format_through_the_sdk(tls_live_server, subscription, fleet):
    client = graph_client(SDK(tls_live_server, subscription))
    request = QueryRequest(
        query="Resources | where type == 'microsoft.hybridcompute/machines' | summarize n = count() by resourceGroup",
        options=QueryRequestOptions(result_format="table"),
    )
    response = client.resources(request)
    assert [(c["name"], c["type"]) for c in response.data["columns"]] == [("resourceGroup", "string"), ("n", "integer")]
    expected = {}
    for machine in fleet.machines.values():
        if machine.resource_group.subscription_id != subscription.pk:
            continue  # the service principal's scope is the first subscription
        group = machine.resource_group.name.lower()
        expected[group] = expected.get(group, 0) + 1
    assert dict(response.data["rows"]) == expected


def test_a_principal_scoped_to_one_group_sees_only_its_rows(tls_live_server, subscription, fleet):
    group = fleet.groups["RG-Data"]
    client = graph_client(SDK(tls_live_server, subscription, role="Reader", scope=group.arm_id))
    query = "Resources | union ResourceContainers | project name, resourceGroup"
    response = client.resources(QueryRequest(query=query))
    names = sorted(row["name"] for row in response.data)
    in_group = [m.name for m in fleet.machines.values() if m.resource_group_id == group.pk]
    in_group += [e.name for e in fleet.extensions.values() if e.machine.resource_group_id == group.pk]
    assert names == sorted([*in_group, group.name])
    assert {row["resourceGroup"] for row in response.data} == {"rg-data"}


def test_a_parser_error_through_the_sdk_has_its_position(tls_live_server, subscription, fleet):
    client = graph_client(SDK(tls_live_server, subscription))
    with pytest.raises(HttpResponseError) as info:
        client.resources(QueryRequest(query="Resources\n| where name == 'x' and\n| project name"))
    assert info.value.status_code == 400
    error = info.value.model.error
    assert error.code == "BadRequest"
    failure = next(d for d in error.details if d.code == "ParserFailure")
    assert failure.additional_properties["line"] == 3 and failure.additional_properties["column"] == 1
    assert "InvalidQuery" in {d.code for d in error.details}
