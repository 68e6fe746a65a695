"""Which rows a caller may read: its readable scopes. Pure (``arcportal.authz`` and ``arcportal.arm.ids`` only).

A row is visible when its ARM id lies within one of the caller's ``ReadableScope``s (compared segment by segment,
case-insensitively, as ``arcportal.arm.ids.is_within``) and its type is one the scope grants. ``readable_scopes`` is
the one place that turns a principal into that list: today a principal holds one ``(role, scope)``; when
principals hold several role assignments, only this function changes.
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


def readable_scopes(principal: Any) -> list[ReadableScope]:
    """The scopes ``principal`` may read in, as ``arcportal.authz.can`` decides ``read``.

    Onboarding-role grants cover machines only (``authz.MACHINE_ONLY_ROLES``): no extensions, groups or
    subscriptions.
    """
    granted = authz.assignment(principal)
    if granted is None:
        return []
    role, scope = granted
    if authz.READ not in authz.ROLE_ACTIONS.get(role, frozenset()):
        return []
    try:
        scope = ids.normalize(scope)
    except ValueError:
        return []
    return [ReadableScope(scope, MACHINE_TYPES if role in authz.MACHINE_ONLY_ROLES else None)]
