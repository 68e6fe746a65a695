"""Authorization: ONE function decides every permission (DESIGN.md §6).

``can(principal, action, scope)``: actions are ``read``, ``write``, ``delete``, ``onboard``; scopes are ARM scope
strings (``/subscriptions/{id}``, ``…/resourceGroups/{name}``, ``…/providers/Microsoft.HybridCompute/machines[/…]``).
Roles follow Azure's built-ins:

| role | may |
|---|---|
| Owner, Contributor | everything inside their scope |
| Reader | read inside their scope |
| Azure Connected Machine Onboarding | read, write and onboard *machines* inside their scope, nothing else |

Portal users (active Django users) are Owner of everything. A principal is anything with ``role`` and ``scope``
attributes (``Principal`` below, ``identity.models.ServicePrincipal``) or a Django user.
No database access: the decision depends only on the principal and the scope string.

``Principal`` is the caller of an ARM request as ``identity.authentication`` resolves it from a bearer token; it
lives here, in the core, so every layer can read it without importing identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arcportal.arm import ids

READ = "read"
WRITE = "write"
DELETE = "delete"
ONBOARD = "onboard"
ACTIONS = frozenset({READ, WRITE, DELETE, ONBOARD})

OWNER = "Owner"
CONTRIBUTOR = "Contributor"
READER = "Reader"
ONBOARDING = "Azure Connected Machine Onboarding"

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    OWNER: ACTIONS,
    CONTRIBUTOR: ACTIONS,
    READER: frozenset({READ}),
    ONBOARDING: frozenset({READ, WRITE, ONBOARD}),
}
# Roles whose grant covers only machines (not groups, subscriptions or extensions).
MACHINE_ONLY_ROLES = frozenset({ONBOARDING})

APP = "app"
USER = "user"
MACHINE = "machine"  # a machine's system-assigned identity (identity.machine_identities); no built-in role


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service principal (``kind="app"``), a portal user (``kind="user"``) or a machine's
    system-assigned identity (``kind="machine"``, no built-in role: only role assignments grant it anything).

    ``role``/``scope`` are what ``arcportal.authz.can`` reads; portal users are Owner of ``/``.
    """

    kind: str
    object_id: str
    name: str
    role: str
    scope: str
    client_id: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    user: Any = field(default=None, compare=False, repr=False)
    service_principal: Any = field(default=None, compare=False, repr=False)

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


def assignment(principal: Any) -> tuple[str, str] | None:
    """``(role, scope)`` of a principal, or ``None`` when it holds no role at all."""
    if principal is None:
        return None
    role = getattr(principal, "role", None)
    scope = getattr(principal, "scope", None)
    if role is not None and scope is not None:
        if getattr(principal, "is_active", True) is False:
            return None
        return str(role), str(scope)
    # A Django user: portal users are Owner of everything.
    if getattr(principal, "is_authenticated", False) and getattr(principal, "is_active", False):
        return OWNER, ids.ROOT
    return None


def can(principal: Any, action: str, scope: str) -> bool:
    """May ``principal`` perform ``action`` on ``scope``?"""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {sorted(ACTIONS)}.")
    granted = assignment(principal)
    if granted is None:
        return False
    role, granted_scope = granted
    if action not in ROLE_ACTIONS.get(role, frozenset()):
        return False
    try:
        if not ids.is_within(granted_scope, scope):
            return False
        target = ids.parse(scope)
    except ValueError:
        return False
    if role in MACHINE_ONLY_ROLES:
        return target.is_machine_scope
    return True
