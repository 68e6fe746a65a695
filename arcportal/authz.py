"""Authorization: ONE function decides every permission (DESIGN.md §6), from the caller's role assignments.

``can(principal, action, scope)``: ``action`` is an Azure RBAC action (``Microsoft.HybridCompute/machines/write``,
``Microsoft.Authorization/roleAssignments/write``) or one of the short words ``read``, ``write``, ``delete``,
``onboard``, which name the action of the resource ``scope`` points at (``write`` on a machine id is
``Microsoft.HybridCompute/machines/write``; ``onboard`` is ``Microsoft.HybridCompute/machines/write`` on machines
only). Scopes are ARM scope strings (``/subscriptions/{id}``, ``…/resourceGroups/{name}``,
``…/providers/Microsoft.HybridCompute/machines[/…]``).

A principal holds ``Grant``s (role definition id + scope). A grant applies to every scope at or below its own
(inheritance down the subscription → resource group → machine tree); it allows an action when one of the role's
``actions`` patterns matches it and none of its ``notActions`` does (Azure's rules: ``*`` is a wildcard, matching is
case-insensitive). The built-in roles carry Azure's role-definition ids.

Where grants come from: ``Principal.grants`` (ARM callers, ``identity.authentication`` loads them once per request),
a Django user's ``arc_grants`` (``identity.middleware`` loads them once per request), or a legacy
``role``/``scope`` pair. A principal with none of these has no access at all. No database access here: the decision
depends only on the principal and the scope string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from arcportal.arm import ids

READ = "read"
WRITE = "write"
DELETE = "delete"
ONBOARD = "onboard"
ACTIONS = frozenset({READ, WRITE, DELETE, ONBOARD})
# Creating or deleting a management lock (issue 13): Owner (and User Access Administrator) only.
LOCKS_WRITE = "Microsoft.Authorization/locks/write"

ROLE_ASSIGNMENTS_READ = "Microsoft.Authorization/roleAssignments/read"
ROLE_ASSIGNMENTS_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENTS_DELETE = "Microsoft.Authorization/roleAssignments/delete"
ROLE_DEFINITIONS_READ = "Microsoft.Authorization/roleDefinitions/read"
MACHINES_WRITE = "Microsoft.HybridCompute/machines/write"
RESOURCE_GROUPS_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"

OWNER = "Owner"
CONTRIBUTOR = "Contributor"
READER = "Reader"
ONBOARDING = "Azure Connected Machine Onboarding"
RESOURCE_ADMINISTRATOR = "Azure Connected Machine Resource Administrator"
USER_ACCESS_ADMINISTRATOR = "User Access Administrator"


@dataclass(frozen=True)
class RoleDefinition:
    """A built-in role as Azure defines it (``Microsoft.Authorization/roleDefinitions``)."""

    id: str
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    def allows(self, action: str) -> bool:
        return any(_matches(p, action) for p in self.actions) and not any(_matches(p, action) for p in self.not_actions)


ROLE_DEFINITIONS: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        OWNER,
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        ("*",),
    ),
    RoleDefinition(
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        CONTRIBUTOR,
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        ("*",),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ),
    ),
    RoleDefinition(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        READER,
        "View all resources, but does not allow you to make any changes.",
        ("*/read",),
    ),
    RoleDefinition(
        "b64e21ea-ac4e-4cdf-9dc9-5b892992bee7",
        ONBOARDING,
        "Can onboard Azure Connected Machines.",
        (
            "Microsoft.HybridCompute/machines/read",
            "Microsoft.HybridCompute/machines/write",
            "Microsoft.HybridCompute/privateLinkScopes/read",
            "Microsoft.GuestConfiguration/guestConfigurationAssignments/read",
        ),
    ),
    RoleDefinition(
        "cd570a14-e51a-42ad-bac8-bafd67325302",
        RESOURCE_ADMINISTRATOR,
        "Can read, write, delete and re-onboard Azure Connected Machines.",
        (
            "Microsoft.HybridCompute/machines/read",
            "Microsoft.HybridCompute/machines/write",
            "Microsoft.HybridCompute/machines/delete",
            "Microsoft.HybridCompute/machines/UpgradeExtensions/action",
            "Microsoft.HybridCompute/machines/extensions/read",
            "Microsoft.HybridCompute/machines/extensions/write",
            "Microsoft.HybridCompute/machines/extensions/delete",
            "Microsoft.HybridCompute/machines/runCommands/read",
            "Microsoft.HybridCompute/machines/runCommands/write",
            "Microsoft.HybridCompute/machines/runCommands/delete",
            "Microsoft.HybridCompute/privateLinkScopes/*",
            "Microsoft.HybridCompute/*/read",
            "Microsoft.Resources/deployments/*",
        ),
    ),
    RoleDefinition(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        USER_ACCESS_ADMINISTRATOR,
        "Lets you manage user access to Azure resources.",
        ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    ),
)
ROLES_BY_ID = {role.id: role for role in ROLE_DEFINITIONS}
ROLES_BY_NAME = {role.name: role for role in ROLE_DEFINITIONS}

# Kept for callers written before role assignments: role name → the short action words it allows anywhere.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    OWNER: ACTIONS | {LOCKS_WRITE},
    CONTRIBUTOR: ACTIONS,
    READER: frozenset({READ}),
    ONBOARDING: frozenset({READ, WRITE, ONBOARD}),
    RESOURCE_ADMINISTRATOR: ACTIONS,
    USER_ACCESS_ADMINISTRATOR: frozenset({READ}),
}
# Roles whose grant covers only machines (not groups, subscriptions): they cannot read a resource group.
MACHINE_ONLY_ROLES = frozenset({ONBOARDING, RESOURCE_ADMINISTRATOR})

APP = "app"
USER = "user"
MACHINE = "machine"
PRINCIPAL_KINDS = (USER, APP, MACHINE)


def role_definition(value: str) -> RoleDefinition | None:
    """A built-in role by its GUID, by its full ARM id (``…/roleDefinitions/{guid}``) or by its name."""
    if not isinstance(value, str):
        return None
    key = value.rstrip("/").rsplit("/", 1)[-1].lower()
    return ROLES_BY_ID.get(key) or ROLES_BY_NAME.get(value)


@dataclass(frozen=True)
class Grant:
    """One role assignment as ``can`` reads it: a role definition id and the scope it was assigned at."""

    role_id: str
    scope: str

    @property
    def role(self) -> RoleDefinition | None:
        return ROLES_BY_ID.get(self.role_id)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service principal (``kind="app"``), a portal user (``"user"``) or a machine's
    system-assigned identity (``"machine"``).

    ``grants`` are what ``arcportal.authz.can`` reads. ``role``/``scope`` are a legacy single grant, used only when
    ``grants`` is empty.
    """

    kind: str
    object_id: str
    name: str
    role: str = ""
    scope: str = ""
    client_id: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    user: Any = field(default=None, compare=False, repr=False)
    service_principal: Any = field(default=None, compare=False, repr=False)
    grants: tuple[Grant, ...] = field(default=(), compare=False)

    is_authenticated = True
    is_anonymous = False

    @property
    def actor_type(self) -> str:
        """ARM ``systemData.createdByType``."""
        return {APP: "Application", MACHINE: "ManagedIdentity"}.get(self.kind, "User")

    @property
    def pk(self) -> str:
        return self.object_id

    def __str__(self) -> str:
        return self.name


def grants_of(principal: Any) -> tuple[Grant, ...]:
    """Every grant ``principal`` holds (empty when it holds none, is inactive or is anonymous)."""
    if principal is None or getattr(principal, "is_active", True) is False:
        return ()
    if not getattr(principal, "is_authenticated", True):
        return ()
    grants = getattr(principal, "grants", None) or getattr(principal, "arc_grants", None)
    if grants:
        return tuple(grants)
    role = getattr(principal, "role", None)
    scope = getattr(principal, "scope", None)
    if role and scope:
        definition = role_definition(str(role))
        return (Grant(definition.id, str(scope)),) if definition else ()
    return ()


def assignment(principal: Any) -> tuple[str, str] | None:
    """``(role name, scope)`` of a principal's first grant, or ``None``. Prefer ``grants_of``: a principal may hold
    several."""
    for grant in grants_of(principal):
        if grant.role is not None:
            return grant.role.name, grant.scope
    return None


def arm_action(action: str, scope: str) -> str:
    """The Azure RBAC action a short action word means on ``scope`` (full action strings are returned as they are)."""
    if "/" in action:
        return action
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {sorted(ACTIONS)} or an Azure RBAC action.")
    if action == ONBOARD:
        return "Microsoft.HybridCompute/machines/write"
    kind = ids.parse(scope).kind
    if kind in ("machine", "machines"):
        return f"Microsoft.HybridCompute/machines/{action}"
    if kind in ("extension", "extensions"):
        return f"Microsoft.HybridCompute/machines/extensions/{action}"
    if kind == "resourceGroup":
        return f"Microsoft.Resources/subscriptions/resourceGroups/{action}"
    return f"Microsoft.Resources/subscriptions/{action}"


def can(principal: Any, action: str, scope: str) -> bool:
    """May ``principal`` perform ``action`` on ``scope``?"""
    if "/" not in action and action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {sorted(ACTIONS)} or an Azure RBAC action.")
    grants = grants_of(principal)
    if not grants:
        return False
    try:
        wanted = arm_action(action, scope)
    except ValueError:
        return False
    if action == ONBOARD and not ids.parse(scope).is_machine_scope:
        return False
    return any(grant_allows(grant, wanted, scope) for grant in grants)


def holds_role_within(principal: Any, scope: str) -> bool:
    """Does ``principal`` hold any role at ``scope`` or below it (Azure shows such a subscription in lists)?"""
    for grant in grants_of(principal):
        try:
            if grant.role is not None and ids.is_within(scope, grant.scope):
                return True
        except ValueError:
            continue
    return False


def allows_anywhere(principal: Any, action: str) -> bool:
    """Does ``principal`` hold a role allowing the full Azure ``action`` at some scope (commands that act on a
    selection, like the machine list's Delete, show only then)?"""
    return any(grant.role is not None and grant.role.allows(action) for grant in grants_of(principal))


def may_onboard(principal: Any) -> bool:
    """May ``principal`` open + Add and its Generate script wizard (403 otherwise, and its links are hidden)? Only
    with a role that writes machines somewhere: Owner, Contributor, the Azure Connected Machine roles; not Reader."""
    return allows_anywhere(principal, MACHINES_WRITE)


def may_manage_users(principal: Any) -> bool:
    """May ``principal`` open the Users page (403 otherwise, and its link is hidden)? Only with a role that assigns
    roles somewhere: Owner, User Access Administrator."""
    return allows_anywhere(principal, ROLE_ASSIGNMENTS_WRITE)


def may_read_service_principal(principal: Any, scope: str) -> bool:
    """May ``principal`` see a service principal holding a role at ``scope`` (listed on the Service principals page;
    its revoke URL answers 404 otherwise)? What it shows is a role assignment, so it needs what reading those needs:
    ``Microsoft.Authorization/roleAssignments/read`` at ``scope`` (every role's ``*/read``: Reader and up; not the
    machine-only Azure Connected Machine roles)."""
    return can(principal, ROLE_ASSIGNMENTS_READ, scope)


def may_create_service_principal(principal: Any, scope: str) -> bool:
    """May ``principal`` create a service principal holding a role at ``scope`` (the Service principals page, the
    wizard's new at-scale principal)? It needs write at ``scope`` and, as Azure asks of every role assignment,
    ``Microsoft.Authorization/roleAssignments/write`` there: Owner, not Contributor (whose principal could otherwise
    be given a role its creator may not give)."""
    return _may_change_role_holder(principal, ROLE_ASSIGNMENTS_WRITE, scope)


def may_revoke_service_principal(principal: Any, scope: str) -> bool:
    """May ``principal`` revoke a service principal holding a role at ``scope``? The same rule as creating one, with
    Azure's action for taking a role away, ``Microsoft.Authorization/roleAssignments/delete``: Owner, not
    Contributor (which could otherwise cut off a principal an Owner made)."""
    return _may_change_role_holder(principal, ROLE_ASSIGNMENTS_DELETE, scope)


def _may_change_role_holder(principal: Any, role_assignments_action: str, scope: str) -> bool:
    """The one rule for creating or revoking a principal that holds a role at ``scope``: write there, and the
    role-assignment action (``…/roleAssignments/write`` to give the role, ``…/delete`` to take it away)."""
    return can(principal, WRITE, scope) and can(principal, role_assignments_action, scope)


def grant_allows(grant: Grant, action: str, scope: str) -> bool:
    """Does this one grant allow the full Azure ``action`` on ``scope``?"""
    role = grant.role
    if role is None or not role.allows(action):
        return False
    try:
        return ids.is_within(grant.scope, scope)
    except ValueError:
        return False


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def _matches(pattern: str, action: str) -> bool:
    return _pattern(pattern).fullmatch(action) is not None
