"""PURE: lock names, levels and the scope keys a lock is looked up by."""

from __future__ import annotations

import re

from arcportal.arm import ids

LEVELS = ("CanNotDelete", "ReadOnly")
LOCK_TYPE = "Microsoft.Authorization/locks"
_BAD_NAME = re.compile(r"[<>*%&:\\?/+#\x00-\x1f\x7f]")


def validate_lock_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 260:
        raise ValueError("The lock name must be 1 to 260 characters long.")
    if _BAD_NAME.search(name) or name.endswith((".", " ")):
        raise ValueError(
            f"The lock name '{name}' is invalid: it may not contain < > * % & : \\ ? / + # or control characters, "
            "nor end with a period or a space."
        )
    return name


def validate_level(level: object) -> str:
    if level not in LEVELS:
        raise ValueError(f"The lock level '{level}' is invalid; use one of {', '.join(LEVELS)}.")
    return str(level)


def key_of(scope: str) -> str:
    """The folded canonical spelling of a scope (``ids.normalize`` then ASCII lower case)."""
    return ids.fold_name(ids.normalize(scope))


def lockable(scope: str) -> ids.ResourceId:
    """The parsed scope when a lock may be placed on it: a subscription, a resource group or a machine."""
    parsed = ids.parse(scope)
    if parsed.kind not in ("subscription", "resourceGroup", "machine"):
        raise ValueError(f"Locks are supported on subscriptions, resource groups and machines, not on '{scope}'.")
    return parsed


def ancestor_keys(resource_id: str) -> list[str]:
    """The keys of every scope whose locks apply to ``resource_id``: its subscription, its group, its machine (an
    extension is covered by its machine's locks)."""
    parsed = ids.parse(resource_id)
    keys = []
    if parsed.subscription:
        keys.append(key_of(ids.subscription_id(parsed.subscription)))
    if parsed.resource_group:
        keys.append(key_of(ids.resource_group_id(parsed.subscription, parsed.resource_group)))
    if parsed.machine:
        keys.append(key_of(ids.machine_id(parsed.subscription, parsed.resource_group, parsed.machine)))
    return keys
