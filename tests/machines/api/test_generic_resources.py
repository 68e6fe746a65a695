"""ARM's generic resource list (``/subscriptions/{s}[/resourceGroups/{g}]/resources``), resource providers, and the
resource groups' tag filter: shapes, filters, paging across machines and extensions, what each role sees, and bad
``$filter``/``$expand`` answered with a specific 400 (never a 500, never ignored)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from arcportal.arm.odata import FilterError, parse_resource_filter
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, sub_path

pytestmark = pytest.mark.django_db
RES_API = "api-version=2024-11-01"


@pytest.fixture
def world(arm, subscription):
    """rg-a: vm-1 (tag env=prod, extension ext-1), vm-2; rg-b (tag team=ops): vm-3 (tag Env=test)."""
    assert arm.put(f"{rg_path(subscription, 'rg-a')}?{RG_API}", {"location": "eastus"}).status_code == 201
    body = {"location": "westeurope", "tags": {"team": "ops"}}
    assert arm.put(f"{rg_path(subscription, 'rg-b')}?{RG_API}", body).status_code == 201
    for group, name, tags in (("rg-a", "vm-1", {"env": "prod"}), ("rg-a", "vm-2", {}), ("rg-b", "vm-3", {"Env": "t"})):
        response = arm.put(f"{machine_path(subscription, group, name)}?{API}", {"location": "eastus", "tags": tags})
        assert response.status_code == 200
    ext = f"{machine_path(subscription, 'rg-a', 'vm-1')}/extensions/ext-1?{API}"
    assert arm.put(ext, {"properties": {"type": "t"}, "tags": {"env": "prod"}}).status_code in (200, 202)
    return subscription


def listed(client, path: str, query: str = "") -> list[str]:
    response = client.get(f"{path}?{RES_API}{query}")
    assert response.status_code == 200, response.content
    return [item["name"] for item in json.loads(response.content)["value"]]


def test_everything_in_one_order_with_the_generic_shape(arm, world):
    path = f"{sub_path(world)}/resources"
    assert listed(arm, path) == ["vm-1", "vm-2", "vm-3", "vm-1/ext-1"]
    body = json.loads(arm.get(f"{path}?{RES_API}&$expand=createdTime,provisioningState").content)
    vm1 = body["value"][0]
    assert vm1["id"] == f"{machine_path(world, 'rg-a', 'vm-1')}"
    assert vm1["type"] == "Microsoft.HybridCompute/machines" and vm1["tags"] == {"env": "prod"}
    assert vm1["identity"]["type"] == "SystemAssigned" and vm1["provisioningState"] == "Succeeded"
    assert vm1["createdTime"].endswith("Z") and "changedTime" not in vm1 and "properties" not in vm1
    assert body["value"][3]["type"] == "Microsoft.HybridCompute/machines/extensions"
    assert listed(arm, f"{rg_path(world, 'rg-b')}/resources") == ["vm-3"]


@pytest.mark.parametrize(
    ("odata", "names"),
    [
        ("resourceType eq 'Microsoft.HybridCompute/machines'", ["vm-1", "vm-2", "vm-3"]),
        ("resourcetype eq 'microsoft.hybridcompute/machines/extensions'", ["vm-1/ext-1"]),
        ("resourceType eq 'Microsoft.Compute/virtualMachines'", []),
        ("resourceGroup eq 'RG-B'", ["vm-3"]),
        ("name eq 'VM-2'", ["vm-2"]),
        ("name eq 'vm-1/ext-1'", ["vm-1/ext-1"]),
        ("substringof('m-1', name)", ["vm-1"]),
        ("tagName eq 'env'", ["vm-1", "vm-3", "vm-1/ext-1"]),
        ("tagName eq 'env' and tagValue eq 'prod'", ["vm-1", "vm-1/ext-1"]),
        ("startswith(tagName, 'en')", ["vm-1", "vm-3"]),
        ("location eq 'eastus' and resourceGroup eq 'rg-a'", ["vm-1", "vm-2", "vm-1/ext-1"]),
    ],
)
def test_filters(arm, world, odata, names):
    assert listed(arm, f"{sub_path(world)}/resources", f"&$filter={odata}") == names


def test_paging_crosses_from_machines_to_extensions_without_loss_or_repeat(arm, world):
    seen, url = [], f"{sub_path(world)}/resources?{RES_API}"
    with override_settings(ARM_PAGE_SIZE=3):
        while url:
            body = json.loads(arm.get(url.removeprefix("http://testserver")).content)
            seen += [item["name"] for item in body["value"]]
            url = body.get("nextLink")
    assert seen == ["vm-1", "vm-2", "vm-3", "vm-1/ext-1"]
    assert listed(arm, f"{sub_path(world)}/resources", "&$top=2") == ["vm-1", "vm-2"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("$filter=kind eq 'x'", "cannot be filtered on"),
        ("$filter=resourceType eq 'a' or resourceType eq 'b'", "is not supported at 'or resourceType"),
        ("$filter=name eq 'unterminated", "is not supported"),
        ("$filter=tagValue eq 'v'", "needs a tagName"),
        ("$filter=name eq 'a' and name eq 'b'", "twice"),
        ("$filter=" + "name eq 'x' and " * 150 + "name eq 'y'", "longer than"),
        ("$expand=properties", "$expand value 'properties' is not supported"),
    ],
)
def test_bad_filter_or_expand_is_a_specific_400(arm, world, query, needle):
    response = arm.get(f"{sub_path(world)}/resources?{RES_API}&{query}")
    assert response.status_code == 400, response.content
    error = json.loads(response.content)["error"]
    assert error["code"] == "InvalidFilterInQueryString" and needle in error["message"]


def test_resource_groups_filter_by_tag_and_refuse_other_filters(arm, world):
    path = f"{sub_path(world)}/resourcegroups"
    assert listed(arm, path, "&$filter=tagName eq 'TEAM' and tagValue eq 'ops'") == ["rg-b"]
    assert listed(arm, path, "&$filter=tagName eq 'team' and tagValue eq 'dev'") == []
    response = arm.get(f"{path}?{RG_API}&$filter=name eq 'rg-a'")
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "InvalidFilterInQueryString"


def test_each_role_lists_only_what_it_may_read(world, sp_token):
    reader, _ = sp_token("Reader", rg_path(world, "rg-a"))
    assert listed(ArmClient(reader), f"{sub_path(world)}/resources") == ["vm-1", "vm-2", "vm-1/ext-1"]
    onboarding, _ = sp_token("Azure Connected Machine Onboarding", rg_path(world, "rg-b"))
    assert listed(ArmClient(onboarding), f"{sub_path(world)}/resources") == ["vm-3"]  # machines, no extensions
    assert listed(ArmClient(onboarding), f"{rg_path(world, 'rg-b')}/resources") == ["vm-3"]
    response = ArmClient(reader).get(f"{rg_path(world, 'rg-b')}/resources?{RES_API}")
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "AuthorizationFailed"
    assert ArmClient(None).get(f"{sub_path(world)}/resources?{RES_API}").status_code == 401


def test_providers(arm, world):
    response = arm.get(f"{sub_path(world)}/providers/microsoft.hybridcompute?{RES_API}")
    assert response.status_code == 200
    provider = json.loads(response.content)
    assert provider["namespace"] == "Microsoft.HybridCompute" and provider["registrationState"] == "Registered"
    machines = next(t for t in provider["resourceTypes"] if t["resourceType"] == "machines")
    assert machines["apiVersions"][0] == API.removeprefix("api-version=") and "East US" in machines["locations"]
    listed_namespaces = [
        p["namespace"] for p in json.loads(arm.get(f"{sub_path(world)}/providers?{RES_API}").content)["value"]
    ]
    assert "Microsoft.HybridCompute" in listed_namespaces
    missing = arm.get(f"{sub_path(world)}/providers/Microsoft.Nothing?{RES_API}")
    assert missing.status_code == 404
    assert json.loads(missing.content)["error"]["code"] == "InvalidResourceNamespace"
    assert arm.get(f"{sub_path(world)}/providers/Microsoft.HybridCompute").status_code == 400  # no api-version


def test_the_filter_parser_unquotes_literals_and_rejects_nul_free_garbage():
    parsed = parse_resource_filter("tagName eq 'o''brien' AND tagValue eq ''")
    assert parsed.tag_name == "o'brien" and parsed.tag_value == ""
    for bad in ("", "   "):
        assert parse_resource_filter(bad) == parse_resource_filter(None)
    for bad in ("eq 'x'", "name eq x", "name  eq  'x' and", "substringof(name, 'x')", "name eq 'x')"):
        with pytest.raises(FilterError):
            parse_resource_filter(bad)
