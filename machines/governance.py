"""Role assignments where they meet the resource tree: which scopes exist, who the principals are (users and service
principals from identity, machine identities from here), and what a principal may see (issue 13).

identity owns the assignments (``identity.role_assignments``); this module adds what only machines knows — that a
subscription, resource group or machine exists and which machine a system-assigned identity belongs to — and is what
the ARM views and the portal's IAM pages call.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

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


def principal_choices(user) -> list[PrincipalRef]:
    """Who a user may pick in the IAM pages: every user and service principal, and the identities of the machines
    it may read (a hidden machine's name never shows)."""
    found = [PrincipalRef(p.object_id, p.kind, p.display_name) for p in ra.principal_directory()]
    machines = machines_permitted(Machine.objects.order_by("name"), user).values_list("identity_principal_id", "name")
    found += [PrincipalRef(str(guid), PrincipalKind.MACHINE, name) for guid, name in machines]
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


def _machine_grant_scopes(principal, action: str):
    """The parsed scopes of ``principal``'s grants that allow ``action`` on machines; ``None`` once for a grant at
    the root (then every machine)."""
    wanted = f"Microsoft.HybridCompute/machines/{action}"
    for grant in authz.grants_of(principal):
        if grant.role is None or not grant.role.allows(wanted):
            continue
        try:
            scope = ids.parse(grant.scope)
        except ValueError:
            continue
        yield None if scope.is_root else scope


def machine_scope_q(principal, action: str = authz.READ) -> Q | None:
    """Which machines ``principal`` may ``action`` (``read``/``write``/``delete``), as a filter on ``Machine``:
    ``None`` means every machine (a grant at the root), an empty ``Q(pk__in=[])`` none. The same decision as
    ``authz.can`` on each machine's id, done in the database."""
    found = Q(pk__in=[])
    for scope in _machine_grant_scopes(principal, action):
        if scope is None:
            return None
        part = Q(resource_group__subscription__subscription_id=ra._guid(scope.subscription))
        if scope.resource_group is not None:
            part &= Q(resource_group__name__iexact_ascii=scope.resource_group)
        if scope.machine is not None:
            part &= Q(name__iexact_ascii=scope.machine)
        found |= part
    return found


class MachineGrantsBelowGroups(Exception):
    """``principal`` holds a grant on single machines: what it may see is not a set of whole resource groups."""


def machine_scope_groups_q(principal, action: str = authz.READ) -> Q | None:
    """``machine_scope_q`` as a filter on ``ResourceGroup`` (the groups whose machines ``principal`` may ``action``),
    for counts kept per group (``machines.fleet_counts``); ``None`` means every group. Raises
    ``MachineGrantsBelowGroups`` when a grant names a single machine."""
    found = Q(pk__in=[])
    for scope in _machine_grant_scopes(principal, action):
        if scope is None:
            return None
        if scope.machine is not None:
            raise MachineGrantsBelowGroups(scope.machine)
        part = Q(subscription__subscription_id=ra._guid(scope.subscription))
        if scope.resource_group is not None:
            part &= Q(name__iexact_ascii=scope.resource_group)
        found |= part
    return found


def machines_permitted(queryset, principal, action: str = authz.READ):
    """``queryset`` narrowed to the machines ``principal`` may ``action``."""
    q = machine_scope_q(principal, action)
    return queryset if q is None else queryset.filter(q)


def resource_groups_readable(queryset, principal):
    """Resource groups ``principal`` may read (``Microsoft.Resources/subscriptions/resourceGroups/read``)."""
    return [group for group in queryset if authz.can(principal, authz.READ, group.arm_id)]
