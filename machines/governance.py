"""Role assignments where they meet the resource tree: which scopes exist, who the principals are (users and service
principals from identity, machine identities from here), and what a principal may see (issue 13).

identity owns the assignments (``identity.role_assignments``); this module adds what only machines knows — that a
subscription, resource group or machine exists and which machine a system-assigned identity belongs to — and is what
the ARM views and the portal's IAM pages call.
"""

from __future__ import annotations

from dataclasses import dataclass

from arcportal import authz
from arcportal.arm import ids
from arcportal.exceptions import Invalid, NotFound
from identity import role_assignments as ra
from identity.models import PrincipalKind, RoleAssignment
from machines import selectors
from machines.models import Machine


def scope_resolve(scope: str) -> str:
    """The canonical spelling of ``scope`` if it names a subscription, resource group or machine of this tenant;
    ``Invalid`` for other shapes, ``NotFound`` (with ARM's code) when the resource is not there."""
    clean = ra.scope_clean(scope)
    parsed = ids.parse(clean)
    subscription = selectors.subscription_get(subscription_id=parsed.subscription)
    if subscription is None:
        raise NotFound(f"The subscription '{parsed.subscription}' could not be found.", code="SubscriptionNotFound")
    if parsed.resource_group is None:
        return clean
    group = selectors.resource_group_get(subscription=subscription, name=parsed.resource_group)
    if group is None:
        raise NotFound(f"Resource group '{parsed.resource_group}' could not be found.", code="ResourceGroupNotFound")
    if parsed.machine is None:
        return ids.resource_group_id(parsed.subscription, group.name)
    machine = selectors.machine_get(resource_group=group, name=parsed.machine)
    if machine is None:
        raise NotFound(
            f"The Resource '{ids.MACHINE_TYPE}/{parsed.machine}' under resource group '{group.name}' was not found.",
            code="ResourceNotFound",
        )
    return ids.machine_id(parsed.subscription, group.name, machine.name)


@dataclass(frozen=True)
class PrincipalRef:
    object_id: str
    kind: str
    display_name: str

    @property
    def principal_type(self) -> str:
        """Azure's ``principalType``: managed identities are service principals."""
        return "User" if self.kind == PrincipalKind.USER else "ServicePrincipal"


def principal_find(*, object_id: str) -> PrincipalRef | None:
    """A user, a service principal or a machine's system-assigned identity, by object id."""
    info = ra.principal_lookup(object_id=object_id)
    if info is not None:
        return PrincipalRef(info.object_id, info.kind, info.display_name)
    guid = ra._guid(object_id)
    machine = (
        Machine.objects.filter(identity_principal_id=guid).select_related("resource_group").first() if guid else None
    )
    if machine is not None:
        return PrincipalRef(str(guid), PrincipalKind.MACHINE, machine.name)
    return None


def principal_names() -> dict[str, PrincipalRef]:
    """Every principal by object id (users, service principals, machine identities): for listing pages."""
    found = {p.object_id: PrincipalRef(p.object_id, p.kind, p.display_name) for p in ra.principal_directory()}
    for guid, name in Machine.objects.values_list("identity_principal_id", "name"):
        found.setdefault(str(guid), PrincipalRef(str(guid), PrincipalKind.MACHINE, name))
    return found


def role_assignment_assign(
    *,
    scope: str,
    role_definition_id: str,
    principal_id: str,
    name: str | None = None,
    description: str = "",
    created_by: str = "",
) -> tuple[RoleAssignment, bool]:
    """Create a role assignment after checking that the scope and the principal exist (nothing written otherwise)."""
    clean = scope_resolve(scope)
    if authz.role_definition(str(role_definition_id or "")) is None:
        raise Invalid(f"The role definition '{role_definition_id}' does not exist.", code="RoleDefinitionDoesNotExist")
    principal = principal_find(object_id=principal_id)
    if principal is None:
        raise Invalid(
            f"Principal {principal_id} does not exist in the directory of this tenant.", code="PrincipalNotFound"
        )
    return ra.role_assignment_create(
        scope=clean,
        role_definition_id=role_definition_id,
        principal_id=principal.object_id,
        principal_kind=principal.kind,
        name=name,
        description=description,
        created_by=created_by,
    )


def role_assignment_visible(principal, row: RoleAssignment) -> bool:
    """A caller sees an assignment if it may read role assignments at its scope, or it is its own."""
    return authz.can(principal, authz.ROLE_ASSIGNMENTS_READ, row.scope) or str(row.principal_id) == str(
        getattr(principal, "object_id", "")
    )
