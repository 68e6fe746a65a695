"""``az role assignment create/list`` against the portal's role assignments (branch rbac): the assignee named by
object id and type (no Microsoft Graph here, docs/cli.md), the new assignment then in force on the ARM plane."""

from __future__ import annotations

from identity.service_principals import service_principal_create
from tests.machines.factories import MachineFactory, ResourceGroupFactory


def test_role_assignment_create_and_list(az, subscription):
    web = ResourceGroupFactory(subscription=subscription, name="rg-web")
    ResourceGroupFactory(subscription=subscription, name="rg-db")
    MachineFactory(resource_group=web, name="web-01")
    other = service_principal_create(
        display_name="auditor", role="Reader", scope=f"{subscription.arm_id}/resourceGroups/rg-db"
    )
    object_id = str(other.service_principal.object_id)
    scope = f"{subscription.arm_id}/resourceGroups/rg-web"

    created = az.json(
        "role", "assignment", "create",
        "--assignee-object-id", object_id, "--assignee-principal-type", "ServicePrincipal",
        "--role", "Reader", "--scope", scope,
    )  # fmt: skip
    assert created["principalId"] == object_id and created["principalType"] == "ServicePrincipal"
    assert created["scope"] == scope
    assert created["roleDefinitionId"].endswith("/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7")  # Reader

    at_scope = az.json("role", "assignment", "list", "--scope", scope, "--fill-principal-name", "false")
    assert [(a["principalId"], a["roleDefinitionName"], a["id"]) for a in at_scope] == [
        (object_id, "Reader", created["id"])
    ]
    mine = az.json(
        "role", "assignment", "list", "--assignee-object-id", object_id, "--all", "--fill-principal-name", "false"
    )
    assert sorted(a["resourceGroup"] for a in mine) == ["rg-db", "rg-web"]
    everything = az.json("role", "assignment", "list", "--all", "--fill-principal-name", "false")
    assert {(a["principalId"], a["roleDefinitionName"]) for a in everything} >= {
        (object_id, "Reader"),
        (az.login_output[0]["user"]["name"] and _object_id_of(az.client_id), "Owner"),
    }
    reader = az.json("role", "definition", "list", "--name", "Reader")
    assert [d["roleName"] for d in reader] == ["Reader"]

    # Microsoft Graph is not served: a command that needs it says which scope it asked for (docs/cli.md).
    assert "graph" in az.fails("role", "assignment", "list", "--scope", scope)


def _object_id_of(client_id: str) -> str:
    from identity.models import ServicePrincipal

    return str(ServicePrincipal.objects.get(client_id=client_id).object_id)
