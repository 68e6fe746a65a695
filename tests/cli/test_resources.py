"""``az resource list/show/tag/delete`` on machines and ``az rest`` against the portal (generic resources
``/subscriptions/{s}/resources`` with ``$filter``/``$expand``, resource providers, the machine's own URLs)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from machines.models import Extension, Machine
from tests.machines.factories import MachineFactory, MachineTagFactory, ResourceGroupFactory

MACHINES = "Microsoft.HybridCompute/machines"


@pytest.fixture
def fleet(subscription):
    web = ResourceGroupFactory(subscription=subscription, name="rg-web", location="eastus")
    db = ResourceGroupFactory(subscription=subscription, name="rg-db", location="westeurope")
    web1 = MachineFactory(resource_group=web, name="web-01")
    MachineTagFactory(machine=web1, key="env", value="prod")
    MachineFactory(resource_group=web, name="web-02")
    db1 = MachineFactory(resource_group=db, name="db-01")
    MachineTagFactory(machine=db1, key="env", value="test")
    Extension.objects.create(machine=web1, name="CustomScript", location="eastus", publisher="Microsoft.Azure")
    return {"web-01": web1, "db-01": db1}


def test_resource_list_by_type_group_name_and_tag(az, subscription, fleet):
    machines = az.json("resource", "list", "--resource-type", MACHINES)
    assert [(r["resourceGroup"], r["name"], r["type"]) for r in machines] == [
        ("rg-db", "db-01", MACHINES),
        ("rg-web", "web-01", MACHINES),
        ("rg-web", "web-02", MACHINES),
    ]
    web1 = machines[1]
    assert web1["id"] == fleet["web-01"].arm_id and web1["location"] == "eastus" and web1["tags"] == {"env": "prod"}
    assert web1["identity"]["type"] == "SystemAssigned" and web1["provisioningState"] == "Succeeded"
    assert web1["createdTime"] and web1["changedTime"]  # $expand=createdTime,changedTime,provisioningState
    with override_settings(ARM_PAGE_SIZE=1):  # the CLI follows nextLink page by page
        assert az.json("resource", "list", "--resource-type", MACHINES) == machines

    everything = az.json("resource", "list", "--resource-group", "rg-web")
    assert [(r["name"], r["type"]) for r in everything] == [
        ("web-01", MACHINES),
        ("web-02", MACHINES),
        ("web-01/CustomScript", f"{MACHINES}/extensions"),
    ]
    assert [r["name"] for r in az.json("resource", "list", "--tag", "env=test")] == ["db-01"]
    assert [r["name"] for r in az.json("resource", "list", "--tag", "env")] == ["db-01", "web-01"]
    assert [r["name"] for r in az.json("resource", "list", "--name", "web-02")] == ["web-02"]
    assert az.json("resource", "list", "--resource-type", "Microsoft.Compute/virtualMachines") == []
    assert "ResourceGroupNotFound" in az.fails("resource", "list", "--resource-group", "rg-missing")


def test_resource_show_tag_and_delete_a_machine(az, subscription, fleet):
    where = ["--resource-group", "rg-web", "--name", "web-01", "--resource-type", MACHINES]
    shown = az.json("resource", "show", *where)
    assert shown["id"] == fleet["web-01"].arm_id
    assert shown["properties"]["status"] == "Connected" and shown["tags"] == {"env": "prod"}

    tagged = az.json("resource", "tag", *where, "--tags", "owner=ops")  # replaces the tags (a PUT of the resource)
    assert tagged["tags"] == {"owner": "ops"}
    added = az.json("resource", "tag", "--ids", fleet["web-01"].arm_id, "--tags", "tier=1", "--is-incremental")
    assert added["tags"] == {"owner": "ops", "tier": "1"}
    assert {t.key: t.value for t in Machine.objects.get(pk=fleet["web-01"].pk).tag_set.all()} == added["tags"]
    by_id = az.json("resource", "show", "--ids", fleet["web-01"].arm_id)
    assert by_id["tags"] == {"owner": "ops", "tier": "1"} and by_id["properties"]["osType"] == "linux"

    assert az.run("resource", "delete", *where).stdout.strip() == ""
    assert not Machine.objects.filter(pk=fleet["web-01"].pk).exists()
    assert not Extension.objects.filter(machine_id=fleet["web-01"].pk).exists()
    assert "ResourceNotFound" in az.fails("resource", "show", *where)
    assert "InvalidResourceNamespace" in az.fails(
        "resource", "show", "-g", "rg-web", "-n", "x", "--resource-type", "Microsoft.Nothing/things"
    )


def test_rest_reaches_any_arm_url(az, subscription, fleet):
    sub = f"/subscriptions/{subscription.subscription_id}"
    groups = az.json("rest", "--method", "get", "--url", f"{sub}/resourcegroups?api-version=2021-04-01")
    assert sorted(g["name"] for g in groups["value"]) == ["rg-db", "rg-web"]
    machine = f"{sub}/resourceGroups/rg-db/providers/{MACHINES}/db-01?api-version=2024-07-10"
    patched = az.json("rest", "--method", "patch", "--url", machine, "--body", json.dumps({"tags": {"a": "b"}}))
    assert patched["name"] == "db-01" and patched["tags"] == {"a": "b"}
    full_url = f"{az.server.url}{sub}/providers/Microsoft.HybridCompute?api-version=2021-04-01"
    provider = az.json("rest", "--url", full_url)
    assert provider["registrationState"] == "Registered"
    assert {t["resourceType"] for t in provider["resourceTypes"]} >= {"machines", "machines/extensions"}
    error = az.fails("rest", "--url", f"{sub}/resources?api-version=2021-04-01&$filter=kind eq 'x'")
    assert "Bad Request" in error and "InvalidFilterInQueryString" in error
