"""``azure-mgmt-authorization`` 4.0.0, unmodified, against the portal over TLS (issue 13): an Owner assigns Reader
to a service principal at one resource group; that principal reads there, gets ``AuthorizationFailed`` on writes
and sees nothing elsewhere. Bad assignments are refused with specific ARM errors and write nothing."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from arcportal import authz
from identity.models import RoleAssignment
from tests.machines.api.test_sdk import SDK
from tests.machines.factories import MachineFactory, ResourceGroupFactory

READER_ID = authz.ROLES_BY_NAME[authz.READER].id


def authorization_client(sdk: SDK) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        sdk.credential, sdk.subscription_id, base_url=sdk.server.url, connection_verify=sdk.server.ca_file
    )


@pytest.fixture
def fleet(subscription):
    group_a = ResourceGroupFactory(subscription=subscription, name="rg-a")
    group_b = ResourceGroupFactory(subscription=subscription, name="rg-b")
    return {
        "a": MachineFactory(resource_group=group_a, name="srv-a"),
        "b": MachineFactory(resource_group=group_b, name="srv-b"),
        "rg_a": f"{subscription.arm_id}/resourceGroups/rg-a",
    }


def error_code(exc: HttpResponseError) -> str:
    return exc.error.code if exc.error else ""


def test_reader_at_one_resource_group_reads_there_only(tls_live_server, subscription, fleet):
    owner = SDK(tls_live_server, subscription)
    owner_auth = authorization_client(owner)
    # A service principal whose only assignment (made at creation) the Owner removes through the SDK first.
    reader = SDK(
        tls_live_server, subscription, role=authz.ONBOARDING, scope=f"{subscription.arm_id}/resourceGroups/rg-b"
    )
    reader_oid = _object_id(reader.client_id)
    existing = list(owner_auth.role_assignments.list_for_subscription(filter=f"principalId eq '{reader_oid}'"))
    assert [a.principal_id for a in existing] == [reader_oid]
    owner_auth.role_assignments.delete(existing[0].scope, existing[0].name)

    name = str(uuid.uuid4())
    created = owner_auth.role_assignments.create(
        fleet["rg_a"],
        name,
        RoleAssignmentCreateParameters(
            role_definition_id=f"{subscription.arm_id}/providers/Microsoft.Authorization/roleDefinitions/{READER_ID}",
            principal_id=reader_oid,
            principal_type="ServicePrincipal",
        ),
    )
    assert created.name == name and created.scope == fleet["rg_a"] and created.principal_type == "ServicePrincipal"
    assert created.role_definition_id.endswith(READER_ID)
    assert owner_auth.role_assignments.get(fleet["rg_a"], name).principal_id == reader_oid
    at_group = list(owner_auth.role_assignments.list_for_scope(fleet["rg_a"]))
    assert name in [a.name for a in at_group]

    # The reader reads in rg-a …
    assert reader.hc.machines.get("rg-a", "srv-a").name == "srv-a"
    assert reader.rc.resource_groups.get("rg-a").name == "rg-a"
    assert [m.name for m in reader.hc.machines.list_by_subscription()] == ["srv-a"]
    assert [g.name for g in reader.rc.resource_groups.list()] == ["rg-a"]
    # … gets AuthorizationFailed on every write …
    for write in (
        lambda: reader.hc.machines.update("rg-a", "srv-a", {"tags": {"x": "1"}}),
        lambda: reader.rc.resource_groups.create_or_update("rg-a", {"location": "eastus"}),
        lambda: authorization_client(reader).role_assignments.create(
            fleet["rg_a"],
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(role_definition_id=READER_ID, principal_id=reader_oid),
        ),
    ):
        with pytest.raises(HttpResponseError) as refused:
            write()
        assert refused.value.status_code == 403 and error_code(refused.value) == "AuthorizationFailed"
    # … and sees nothing elsewhere.
    with pytest.raises(HttpResponseError) as elsewhere:
        reader.hc.machines.get("rg-b", "srv-b")
    assert error_code(elsewhere.value) == "AuthorizationFailed"
    assert list(authorization_client(reader).role_assignments.list_for_subscription()) != []
    assert {a.scope for a in authorization_client(reader).role_assignments.list_for_subscription()} <= {fleet["rg_a"]}

    owner_auth.role_assignments.delete(fleet["rg_a"], name)
    with pytest.raises(ResourceNotFoundError):
        owner_auth.role_assignments.get(fleet["rg_a"], name)
    with pytest.raises(HttpResponseError) as gone:
        reader.hc.machines.get("rg-a", "srv-a")
    assert error_code(gone.value) == "AuthorizationFailed"


def _object_id(client_id: str) -> str:
    from identity.selectors import service_principal_get

    return str(service_principal_get(client_id=client_id).object_id)


def test_bad_assignments_are_specific_4xx_and_write_nothing(tls_live_server, subscription, fleet):
    owner = SDK(tls_live_server, subscription)
    client = authorization_client(owner)
    principal = _object_id(owner.client_id)
    reader = f"{subscription.arm_id}/providers/Microsoft.Authorization/roleDefinitions/{READER_ID}"
    client.role_assignments.create(
        fleet["rg_a"],
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id=reader, principal_id=principal),
    )
    before = RoleAssignment.objects.count()
    cases = [
        (fleet["rg_a"], reader, principal, 409, "RoleAssignmentExists"),
        (fleet["rg_a"], f"{reader[:-36]}{uuid.uuid4()}", principal, 400, "RoleDefinitionDoesNotExist"),
        (fleet["rg_a"], reader, str(uuid.uuid4()), 400, "PrincipalNotFound"),
        # Outside the tenant's subscriptions: Azure's answer, "… or the scope is invalid".
        (f"/subscriptions/{uuid.uuid4()}", reader, principal, 403, "AuthorizationFailed"),
        ("/subscriptions/not-a-guid", reader, principal, 400, "InvalidScope"),
        (f"{subscription.arm_id}/resourceGroups/rg-nope", reader, principal, 404, "ResourceGroupNotFound"),
    ]
    for scope, role, who, status, code in cases:
        with pytest.raises(HttpResponseError) as refused:
            client.role_assignments.create(
                scope, str(uuid.uuid4()), RoleAssignmentCreateParameters(role_definition_id=role, principal_id=who)
            )
        assert (refused.value.status_code, error_code(refused.value)) == (status, code), scope
    assert RoleAssignment.objects.count() == before


def test_an_assignment_is_found_and_deleted_only_at_its_own_scope(tls_live_server, subscription, fleet):
    """An assignment's URL names its scope: the same name under another scope is 404 ``RoleAssignmentNotFound`` to
    read and a 204 no-op to delete (Azure's answer for an assignment that is not there), and the assignment stays."""
    client = authorization_client(SDK(tls_live_server, subscription))
    reader = f"{subscription.arm_id}/providers/Microsoft.Authorization/roleDefinitions/{READER_ID}"
    elsewhere = f"{subscription.arm_id}/resourceGroups/rg-b"
    principal = _object_id(SDK(tls_live_server, subscription, role=authz.READER, scope=elsewhere).client_id)
    name = str(uuid.uuid4())
    client.role_assignments.create(
        fleet["rg_a"], name, RoleAssignmentCreateParameters(role_definition_id=reader, principal_id=principal)
    )
    with pytest.raises(ResourceNotFoundError) as missing:
        client.role_assignments.get(elsewhere, name)
    assert error_code(missing.value) == "RoleAssignmentNotFound"
    assert client.role_assignments.delete(elsewhere, name) is None
    assert RoleAssignment.objects.filter(name=name).exists()
    assert client.role_assignments.get(fleet["rg_a"].upper(), name).name == name  # scopes compare case-blind
    assert client.role_assignments.delete(fleet["rg_a"], name).name == name
    assert not RoleAssignment.objects.filter(name=name).exists()


def test_role_definitions_list_and_get(tls_live_server, subscription):
    client = authorization_client(SDK(tls_live_server, subscription))
    scope = subscription.arm_id
    names = {d.role_name for d in client.role_definitions.list(scope)}
    assert names == {role.name for role in authz.ROLE_DEFINITIONS}
    assert [d.name for d in client.role_definitions.list(scope, filter="roleName eq 'Reader'")] == [READER_ID]
    got = client.role_definitions.get(scope, READER_ID)
    assert got.role_name == "Reader" and got.permissions[0].actions == ["*/read"]
    assert got.id == f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{READER_ID}"
    with pytest.raises(HttpResponseError) as missing:
        client.role_definitions.get(scope, str(uuid.uuid4()))
    assert missing.value.status_code == 404


def test_a_machine_identity_can_be_assigned_and_is_listed_as_a_service_principal(tls_live_server, subscription, fleet):
    client = authorization_client(SDK(tls_live_server, subscription))
    identity = str(fleet["a"].identity_principal_id)
    reader = f"{subscription.arm_id}/providers/Microsoft.Authorization/roleDefinitions/{READER_ID}"
    created = client.role_assignments.create(
        fleet["rg_a"],
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id=reader, principal_id=identity),
    )
    assert created.principal_type == "ServicePrincipal" and created.principal_id == identity
    assert RoleAssignment.objects.get(principal_id=identity).principal_kind == "machine"
    listed = list(client.role_assignments.list_for_scope(fleet["rg_a"], filter=f"assignedTo('{identity}')"))
    assert [a.name for a in listed] == [created.name]
    at_machine = list(client.role_assignments.list_for_scope(fleet["a"].arm_id, filter="atScope()"))
    assert created.name in [a.name for a in at_machine]  # inherited from the group
