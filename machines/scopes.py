"""The scope a portal governance page is about (Activity log, Locks at subscription, group or machine scope)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import Http404

from machines import selectors


@dataclass(frozen=True)
class PortalScope:
    arm_id: str
    kind: str  # "subscription", "resourceGroup", "machine"
    label: str
    subscription: Any
    group: Any = None
    machine: Any = None


def portal_scope(*, subscription_id: str, resource_group: str | None = None, name: str | None = None) -> PortalScope:
    """The rows the URL names, or 404."""
    subscription = selectors.subscription_get(subscription_id=subscription_id)
    if subscription is None:
        raise Http404(f"The subscription '{subscription_id}' was not found.")
    if resource_group is None:
        return PortalScope(subscription.arm_id, "subscription", subscription.display_name, subscription)
    group = selectors.resource_group_get(subscription=subscription, name=resource_group)
    if group is None:
        raise Http404(f"The resource group '{resource_group}' was not found.")
    if name is None:
        return PortalScope(group.arm_id, "resourceGroup", group.name, subscription, group)
    machine = selectors.machine_get(resource_group=group, name=name)
    if machine is None:
        raise Http404(f"The machine '{name}' was not found in resource group '{resource_group}'.")
    return PortalScope(machine.arm_id, "machine", machine.name, subscription, group, machine)
