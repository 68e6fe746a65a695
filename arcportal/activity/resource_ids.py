"""PURE: what an activity event is filed under, from any ARM resource id (not only HybridCompute's).

``/subscriptions/S/resourceGroups/RG/providers/Microsoft.HybridCompute/machines/M`` → subscription ``s``, group
``rg``, provider ``microsoft.hybridcompute``, type ``microsoft.hybridcompute/machines``, key = the lower-cased id
(ASCII folding, as the database compares names) — the key lets a scope match itself and everything under it.
"""

from __future__ import annotations

from dataclasses import dataclass


def fold(value: str) -> str:
    """ASCII-only lower case (``arcportal.arm.ids.fold_name``'s rule, repeated to keep this module pure)."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Filing:
    key: str
    subscription_id: str
    resource_group: str
    resource_provider: str
    resource_type: str


def filing(resource_id: str) -> Filing:
    parts = [part for part in resource_id.strip("/").split("/") if part]
    folded = [fold(part) for part in parts]
    subscription = resource_group = provider = ""
    types: list[str] = []
    if len(parts) >= 2 and folded[0] == "subscriptions":
        subscription = folded[1]
    if len(parts) >= 4 and folded[2] == "resourcegroups":
        resource_group = folded[3]
    if "providers" in folded:
        at = len(folded) - 1 - folded[::-1].index("providers")  # the innermost provider names the type
        if at + 1 < len(parts):
            provider = folded[at + 1]
            types = folded[at + 2 :: 2]
    elif resource_group:
        provider, types = "microsoft.resources", ["resourcegroups"]
    elif subscription:
        provider, types = "microsoft.resources", ["subscriptions"]
    resource_type = "/".join([provider, *types]) if provider else ""
    return Filing(
        key="/" + "/".join(folded),
        subscription_id=subscription,
        resource_group=resource_group,
        resource_provider=provider,
        resource_type=resource_type,
    )
