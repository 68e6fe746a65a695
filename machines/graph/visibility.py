"""Which rows a caller may read: its readable scopes. Pure (``arcportal.authz`` and ``arcportal.arm.ids`` only).

A row is visible when its ARM id lies within one of the caller's ``ReadableScope``s (compared segment by segment,
case-insensitively, as ``arcportal.arm.ids.is_within``) and its type is one the scope grants. ``readable_scopes`` is
the one place that turns a principal into that list: one entry per role assignment the principal holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arcportal import authz
from arcportal.arm import ids
from machines.graph.schema import TYPES

MACHINE_TYPES = frozenset({TYPES["m"]})


@dataclass(frozen=True)
class ReadableScope:
    """An ARM scope string and the resource types (lower case) readable inside it; ``None``: every type."""

    scope: str
    types: frozenset[str] | None = None


EVERYTHING = (ReadableScope(ids.ROOT),)
GROUP_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
# A role that cannot read groups reads only the resource types whose read action it holds.
TYPE_READ = {
    TYPES["m"]: "Microsoft.HybridCompute/machines/read",
    TYPES["e"]: "Microsoft.HybridCompute/machines/extensions/read",
}


def readable_scopes(principal: Any) -> list[ReadableScope]:
    """The scopes ``principal`` may read in, as ``arcportal.authz.can`` decides ``read``.

    A role that cannot read resource groups (Onboarding, Resource Administrator) covers only the types it can read
    (machines; extensions for the Resource Administrator), never groups or subscriptions.
    """
    scopes = []
    for grant in authz.grants_of(principal):
        role = grant.role
        if role is None:
            continue
        try:
            scope = ids.normalize(grant.scope)
        except ValueError:
            continue
        if role.allows(GROUP_READ):
            scopes.append(ReadableScope(scope))
            continue
        types = frozenset(kind for kind, action in TYPE_READ.items() if role.allows(action))
        if types:
            scopes.append(ReadableScope(scope, types))
    return scopes
