"""Role assignments (``Microsoft.Authorization/roleAssignments``): reads and writes (issue 13, docs/governance.md).

A role assignment grants one built-in role (``arcportal.authz.ROLE_DEFINITIONS``) to one principal — portal user,
service principal or machine identity, named by its object id — at one scope. ``arcportal.authz.can`` decides from
the ``Grant``s ``role_grants_for`` loads once per request. Which scopes exist (subscriptions, groups, machines) and
which machine identities exist is the caller's knowledge (machines is a higher layer): callers check the scope and
pass the principal's kind; this module checks the role, the scope's shape, that users and service principals exist,
and duplicates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from arcportal import activity, authz
from arcportal.arm import ids
from arcportal.exceptions import Conflict, Invalid, NotFound
from identity.models import PrincipalKind, RoleAssignment, ServicePrincipal
from identity.tokens import user_object_id

ASSIGNABLE_KINDS = ("subscription", "resourceGroup", "machine")


def _guid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def scope_clean(scope: str) -> str:
    """The canonical spelling of an assignable scope (subscription, resource group or machine), else ``Invalid``."""
    try:
        parsed = ids.parse(scope if str(scope).startswith("/") else f"/{scope}")
    except (ValueError, TypeError) as exc:
        raise Invalid(f"The scope '{scope}' is not valid: {exc}", code="InvalidScope") from exc
    if parsed.kind not in ASSIGNABLE_KINDS:
        raise Invalid(
            f"The scope '{scope}' is not valid: roles are assigned at a subscription, a resource group or a machine.",
            code="InvalidScope",
        )
    if _guid(parsed.subscription) is None:
        raise Invalid(f"'{parsed.subscription}' is not a subscription id (a GUID).", code="InvalidScope")
    return parsed.to_string()


def scope_key(scope: str) -> str:
    return ids.fold_name(scope)


# --- reads ---------------------------------------------------------------------------------------------------------


def role_grants_for(*, principal_id: str) -> tuple[authz.Grant, ...]:
    """Every grant of one principal: one query, done once per request (``can`` stays pure)."""
    value = _guid(principal_id)
    if value is None:
        return ()
    rows = RoleAssignment.objects.filter(principal_id=value).values_list("role_definition_id", "scope")
    return tuple(authz.Grant(role_id, scope) for role_id, scope in rows)


def role_assignment_get(*, name: str) -> RoleAssignment | None:
    value = _guid(name)
    return RoleAssignment.objects.filter(name=value).first() if value else None


def role_assignment_list(
    *, scope: str | None = None, principal_id: str | None = None, at_scope_only: bool = False
) -> list[RoleAssignment]:
    """Assignments relevant to ``scope`` as Azure lists them: at it, above it (inherited) and — unless
    ``at_scope_only`` (``$filter=atScope()``) — below it; optionally of one principal only."""
    rows = RoleAssignment.objects.order_by("scope_key", "created_at")
    if principal_id is not None:
        value = _guid(principal_id)
        if value is None:
            return []
        rows = rows.filter(principal_id=value)
    if scope is None:
        return list(rows)
    found = []
    for row in rows:
        if ids.is_within(row.scope, scope) or (not at_scope_only and ids.is_within(scope, row.scope)):
            found.append(row)
    return found


@dataclass(frozen=True)
class PrincipalInfo:
    object_id: str
    kind: str
    display_name: str


def principal_lookup(*, object_id: str) -> PrincipalInfo | None:
    """A portal user or a service principal by object id (machine identities are looked up by machines)."""
    value = _guid(object_id)
    if value is None:
        return None
    principal = ServicePrincipal.objects.filter(object_id=value).first()
    if principal is not None:
        return PrincipalInfo(str(principal.object_id), PrincipalKind.APP, principal.display_name)
    for user in get_user_model()._default_manager.only("pk", "username"):
        if user_object_id(user) == str(value):
            return PrincipalInfo(str(value), PrincipalKind.USER, user.get_username())
    return None


def principal_directory() -> list[PrincipalInfo]:
    """Every user and service principal, for pickers and the "Check access" box."""
    users = [
        PrincipalInfo(user_object_id(user), PrincipalKind.USER, user.get_username())
        for user in get_user_model()._default_manager.order_by("username")
    ]
    apps = [
        PrincipalInfo(str(sp.object_id), PrincipalKind.APP, sp.display_name)
        for sp in ServicePrincipal.objects.order_by("display_name")
    ]
    return users + apps


# --- writes --------------------------------------------------------------------------------------------------------


@transaction.atomic
def role_assignment_create(
    *,
    scope: str,
    role_definition_id: str,
    principal_id: str,
    principal_kind: str | None = None,
    name: str | None = None,
    description: str = "",
    created_by: str = "",
) -> tuple[RoleAssignment, bool]:
    """Assign a role. Returns ``(assignment, created)``; the same PUT again returns the existing one.

    ``principal_kind`` is given by callers that found the principal themselves (machine identities); otherwise the
    principal must be a user or service principal of this tenant."""
    clean = scope_clean(scope)
    role = authz.role_definition(str(role_definition_id or ""))
    if role is None:
        raise Invalid(f"The role definition '{role_definition_id}' does not exist.", code="RoleDefinitionDoesNotExist")
    principal = _guid(principal_id)
    if principal is None:
        raise Invalid(f"The principal id '{principal_id}' is not a GUID.", code="InvalidPrincipalId")
    if principal_kind is None:
        info = principal_lookup(object_id=str(principal))
        if info is None:
            raise Invalid(
                f"Principal {principal.hex} does not exist in the directory of this tenant.", code="PrincipalNotFound"
            )
        principal_kind = info.kind
    if principal_kind not in PrincipalKind.values:
        raise Invalid(f"Unknown principal kind '{principal_kind}'.", code="InvalidPrincipalType")
    assignment_name = _guid(name) if name is not None else uuid.uuid4()
    if assignment_name is None:
        raise Invalid(f"The role assignment name '{name}' is not a GUID.", code="InvalidRoleAssignmentId")
    if len(description or "") > 500:
        raise Invalid("The description is longer than 500 characters.", code="InvalidRequestContent")
    existing = RoleAssignment.objects.filter(name=assignment_name).first()
    if existing is not None:
        same = (existing.principal_id, existing.role_definition_id, existing.scope_key) == (
            principal,
            role.id,
            scope_key(clean),
        )
        if same:
            return existing, False
        raise Conflict(
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            code="RoleAssignmentUpdateNotPermitted",
        )
    if RoleAssignment.objects.filter(principal_id=principal, role_definition_id=role.id, scope_key=scope_key(clean)):
        raise Conflict("The role assignment already exists.", code="RoleAssignmentExists")
    try:
        with transaction.atomic():
            row = RoleAssignment.objects.create(
                name=assignment_name,
                scope=clean,
                scope_key=scope_key(clean),
                role_definition_id=role.id,
                principal_id=principal,
                principal_kind=principal_kind,
                description=description or "",
                created_by=created_by[:200],
            )
    except IntegrityError as exc:  # a concurrent identical PUT won the race
        raise Conflict("The role assignment already exists.", code="RoleAssignmentExists") from exc
    _record(ROLE_ASSIGNMENT_WRITE, row, caller="")  # "": the caller of the request being served (app id or user)
    return row, True


@transaction.atomic
def role_assignment_delete(*, name: str, caller: str = "") -> RoleAssignment:
    row = role_assignment_get(name=name)
    if row is None:
        raise NotFound(f"The role assignment '{name}' is not found.", code="RoleAssignmentNotFound")
    _record(ROLE_ASSIGNMENT_DELETE, row, caller=caller)
    row.delete()
    return row


ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"


def _record(operation: str, row: RoleAssignment, *, caller: str) -> None:
    """The activity event of an assignment made or removed, in the same transaction (portal and ARM alike)."""
    role = authz.role_definition(str(row.role_definition_id))
    activity.record(
        operation=operation,
        status="Succeeded",
        resource_id=f"{row.scope}/providers/Microsoft.Authorization/roleAssignments/{row.name}",
        caller=caller,
        properties={
            "principalId": str(row.principal_id),
            "principalType": row.principal_kind,
            "roleDefinitionName": role.name if role else str(row.role_definition_id),
            "scope": row.scope,
        },
    )


def role_assignment_ensure(*, principal_id: str, principal_kind: str, role: str, scope: str, created_by: str = ""):
    """The assignment exists afterwards (bootstrap, service-principal creation); no error if it already did."""
    definition = authz.role_definition(role)
    clean = scope_clean(scope)
    existing = RoleAssignment.objects.filter(
        principal_id=_guid(principal_id), role_definition_id=definition.id, scope_key=scope_key(clean)
    ).first()
    if existing is not None:
        return existing
    row, _ = role_assignment_create(
        scope=clean,
        role_definition_id=definition.id,
        principal_id=principal_id,
        principal_kind=principal_kind,
        created_by=created_by,
    )
    return row


def user_role_ensure(*, username: str, role: str, scope: str) -> RoleAssignment:
    """The portal user ``username`` holds ``role`` at ``scope`` afterwards."""
    user = get_user_model()._default_manager.get(username=username)
    return role_assignment_ensure(
        principal_id=user_object_id(user), principal_kind=PrincipalKind.USER, role=role, scope=scope
    )


def role_assignments_forget(*, scopes=(), principal_ids=()) -> int:
    """A resource was deleted: remove the assignments at or below its scope, and those naming its identity, so a
    resource created again under the same name starts with no inherited grant (as in Azure). Runs inside the
    caller's transaction."""
    query = Q(pk__in=[])
    for scope in scopes:
        key = scope_key(scope)
        query |= Q(scope_key=key) | Q(scope_key__startswith=f"{key}/")
    guids = [g for g in (_guid(p) for p in principal_ids) if g is not None]
    if guids:
        query |= Q(principal_id__in=guids)
    deleted, _ = RoleAssignment.objects.filter(query).delete()
    return deleted
