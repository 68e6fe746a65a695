"""ARM resource ids and scopes: build, parse and compare them. Pure: no Django import.

Canonical forms (API-CONTRACT.md §3):

* ``/subscriptions/{sub}``
* ``/subscriptions/{sub}/resourceGroups/{rg}``
* ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines[/{name}[/extensions[/{ext}]]]``

Parsing is case-insensitive in the fixed segments (clients send ``resourcegroups`` and vary the case of
``Microsoft.HybridCompute``); building always uses the canonical spelling.

Names compare case-insensitively with **ASCII-only folding** (``A``–``Z`` ↔ ``a``–``z``, nothing else):
``fold_name`` here, and the same rule in every database lookup and unique constraint (``machines.lookups``), so
``Arc-RG`` and ``arc-rg`` are one resource group while ``übersee`` and ``Übersee`` are two, on SQLite and on
PostgreSQL whatever its locale (docs/decisions.md).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

ROOT = "/"
NAMESPACE = "Microsoft.HybridCompute"
MACHINES = "machines"
EXTENSIONS = "extensions"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
MACHINE_TYPE = f"{NAMESPACE}/{MACHINES}"
EXTENSION_TYPE = f"{NAMESPACE}/{MACHINES}/{EXTENSIONS}"


_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold_name(value: str) -> str:
    """The case-folded form names are compared in: ASCII letters lowered, every other character as it is."""
    return value.translate(_ASCII_FOLD)


def subscription_id(subscription: str) -> str:
    return f"/subscriptions/{subscription}"


def resource_group_id(subscription: str, resource_group: str) -> str:
    return f"{subscription_id(subscription)}/resourceGroups/{resource_group}"


def machines_scope(subscription: str, resource_group: str | None = None) -> str:
    """The collection of machines of a resource group (or of a whole subscription when no group is given)."""
    parent = resource_group_id(subscription, resource_group) if resource_group else subscription_id(subscription)
    return f"{parent}/providers/{NAMESPACE}/{MACHINES}"


def machine_id(subscription: str, resource_group: str, name: str) -> str:
    return f"{machines_scope(subscription, resource_group)}/{name}"


def extension_id(subscription: str, resource_group: str, machine: str, name: str) -> str:
    return f"{machine_id(subscription, resource_group, machine)}/{EXTENSIONS}/{name}"


def extensions_scope(subscription: str, resource_group: str, machine: str) -> str:
    return f"{machine_id(subscription, resource_group, machine)}/{EXTENSIONS}"


@dataclass(frozen=True)
class ResourceId:
    """A parsed scope or resource id. Missing trailing parts are ``None``.

    ``machines_collection`` is true for ``…/providers/Microsoft.HybridCompute/machines`` without a name, and
    ``extensions_collection`` for ``…/machines/{name}/extensions`` without an extension name.
    """

    subscription: str | None = None
    resource_group: str | None = None
    machine: str | None = None
    extension: str | None = None
    machines_collection: bool = False
    extensions_collection: bool = False

    @property
    def is_root(self) -> bool:
        return self.subscription is None

    @property
    def kind(self) -> str:
        """One of ``root``, ``subscription``, ``resourceGroup``, ``machines``, ``machine``, ``extensions``,
        ``extension``."""
        if self.extension is not None:
            return "extension"
        if self.extensions_collection:
            return "extensions"
        if self.machine is not None:
            return "machine"
        if self.machines_collection:
            return "machines"
        if self.resource_group is not None:
            return "resourceGroup"
        if self.subscription is not None:
            return "subscription"
        return "root"

    @property
    def is_machine_scope(self) -> bool:
        """The id names machines (one, or the collection), not a group, a subscription or an extension."""
        return self.kind in ("machine", "machines")

    def to_string(self) -> str:
        """The canonical spelling of this id."""
        if self.subscription is None:
            return ROOT
        if self.resource_group is None:
            return machines_scope(self.subscription) if self.machines_collection else subscription_id(self.subscription)
        if self.machine is None:
            if self.machines_collection:
                return machines_scope(self.subscription, self.resource_group)
            return resource_group_id(self.subscription, self.resource_group)
        if self.extension is not None:
            return extension_id(self.subscription, self.resource_group, self.machine, self.extension)
        if self.extensions_collection:
            return extensions_scope(self.subscription, self.resource_group, self.machine)
        return machine_id(self.subscription, self.resource_group, self.machine)

    def __str__(self) -> str:
        return self.to_string()


def _segments(value: str) -> list[str]:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"'{value}' is not an ARM id: it must start with '/'.")
    parts = value.strip("/").split("/") if value.strip("/") else []
    if any(not part for part in parts):
        raise ValueError(f"'{value}' is not an ARM id: it has an empty segment.")
    return parts


def parse(value: str) -> ResourceId:
    """Parse a scope or resource id in any case; raise ``ValueError`` for anything else."""
    parts = _segments(value)
    if not parts:
        return ResourceId()
    lowered = [fold_name(part) for part in parts]
    if lowered[0] != "subscriptions" or len(parts) < 2:
        raise ValueError(f"'{value}' is not an ARM id: it must start with /subscriptions/{{id}}.")
    sub = parts[1]
    rest, lrest = parts[2:], lowered[2:]
    if not rest:
        return ResourceId(subscription=sub)
    resource_group = None
    if lrest[0] == "resourcegroups":
        if len(rest) < 2:
            raise ValueError(f"'{value}' is not an ARM id: the resource group name is missing.")
        resource_group = rest[1]
        rest, lrest = rest[2:], lrest[2:]
        if not rest:
            return ResourceId(subscription=sub, resource_group=resource_group)
    if lrest[:3] != ["providers", fold_name(NAMESPACE), MACHINES]:
        raise ValueError(f"'{value}' is not a resource group or {MACHINE_TYPE} id.")
    rest = rest[3:]
    if not rest:
        return ResourceId(subscription=sub, resource_group=resource_group, machines_collection=True)
    if resource_group is None:
        raise ValueError(f"'{value}' is not an ARM id: a machine needs a resource group.")
    machine = rest[0]
    rest = rest[1:]
    if not rest:
        return ResourceId(subscription=sub, resource_group=resource_group, machine=machine)
    if fold_name(rest[0]) != EXTENSIONS or len(rest) > 2:
        raise ValueError(f"'{value}' is not a {MACHINE_TYPE} or extension id.")
    if len(rest) == 1:
        return ResourceId(subscription=sub, resource_group=resource_group, machine=machine, extensions_collection=True)
    return ResourceId(subscription=sub, resource_group=resource_group, machine=machine, extension=rest[1])


def normalize(value: str) -> str:
    """The canonical spelling of a scope or id (``resourcegroups`` → ``resourceGroups`` …)."""
    return parse(value).to_string()


def is_within(scope: str, target: str) -> bool:
    """True when ``target`` is ``scope`` itself or lies under it, comparing whole segments case-insensitively
    (``fold_name``: ASCII letters only, as the database compares names).

    ``/subscriptions/s/resourceGroups/rg`` contains ``…/resourceGroups/rg/providers/…`` but not
    ``…/resourceGroups/rg2`` (nor ``…/resourceGroups/Rg`` with a non-ASCII ``R``). The root scope ``/`` contains
    everything.
    """
    scope_parts = [fold_name(part) for part in _segments(scope)]
    target_parts = [fold_name(part) for part in _segments(target)]
    return target_parts[: len(scope_parts)] == scope_parts
