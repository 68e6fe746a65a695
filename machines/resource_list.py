"""Reads of ARM's generic resource list (``GET /subscriptions/{s}[/resourceGroups/{g}]/resources``): the machines
and machine extensions of a subscription, narrowed by a parsed ``$filter`` (``arcportal.arm.odata``) and by the
resource groups the caller may read, in one stable order (machines by group and name, then extensions by group,
machine and name) that offset paging (``arcportal.arm.pagination``) slices without loading either table whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Lower

from arcportal.arm import ids
from arcportal.arm.odata import ResourceFilter
from machines.models import Extension, Machine, MachineTag, ResourceGroup, Subscription
from machines.selectors import machine_base_queryset


class ConcatenatedRows(Sequence):
    """Ordered querysets read as one sequence: a slice costs one COUNT per queryset it passes and one page query."""

    def __init__(self, *querysets: QuerySet) -> None:
        self.querysets = querysets

    def __len__(self) -> int:
        return sum(qs.count() for qs in self.querysets)

    def __getitem__(self, window):
        if not isinstance(window, slice) or window.step not in (None, 1):
            raise TypeError("ConcatenatedRows supports forward slices only")
        start, stop = window.start or 0, window.stop
        rows: list[Any] = []
        for qs in self.querysets:
            if stop is not None and stop <= 0:
                break
            count = qs.count()
            if start < count:
                rows.extend(qs[start : count if stop is None else min(stop, count)])
            start = max(0, start - count)
            stop = None if stop is None else stop - count
        return rows


def _wanted_types(resource_type: str | None) -> tuple[bool, bool]:
    if resource_type is None:
        return True, True
    folded = ids.fold_name(resource_type.strip())
    return folded == ids.fold_name(ids.MACHINE_TYPE), folded == ids.fold_name(ids.EXTENSION_TYPE)


def _machines(wanted: ResourceFilter, base: QuerySet[Machine]) -> QuerySet[Machine]:
    qs = base
    if wanted.name is not None:
        qs = qs.filter(name__iexact_ascii=wanted.name)
    if wanted.name_contains is not None:
        qs = qs.filter(name__icontains=wanted.name_contains)
    if wanted.location is not None:
        qs = qs.filter(location__iexact=wanted.location)
    if wanted.tag_name is not None or wanted.tag_name_prefix is not None:
        tags = MachineTag.objects.annotate(lower_key=Lower("key"))
        if wanted.tag_name is not None:
            tags = tags.filter(lower_key=Lower(Value(wanted.tag_name)))
        else:
            tags = tags.filter(key__istartswith=wanted.tag_name_prefix)
        if wanted.tag_value is not None:
            tags = tags.filter(value=wanted.tag_value)
        qs = qs.filter(pk__in=tags.values("machine_id"))
    return qs


def _extensions(wanted: ResourceFilter, base: QuerySet[Extension]) -> QuerySet[Extension]:
    """An extension's name in the generic list is ``<machine>/<extension>`` (ARM's child-resource name)."""
    qs = base
    if wanted.name is not None:
        machine, slash, name = wanted.name.partition("/")
        if not slash:
            return qs.none()
        qs = qs.filter(machine__name__iexact_ascii=machine, name__iexact_ascii=name)
    if wanted.name_contains is not None:
        qs = qs.filter(name__icontains=wanted.name_contains)
    if wanted.location is not None:
        qs = qs.filter(location__iexact=wanted.location)
    if wanted.tag_name_prefix is not None:
        return qs.none()  # extension tags are a JSON object: only exact tag names are matched (docs/cli.md)
    if wanted.tag_name is not None:
        qs = qs.filter(tags__has_key=wanted.tag_name)
        if wanted.tag_value is not None:
            qs = qs.annotate(_tag_value=KeyTransform(wanted.tag_name, "tags")).filter(_tag_value=wanted.tag_value)
    return qs


def generic_resource_list(
    *,
    subscription: Subscription,
    wanted: ResourceFilter,
    machine_groups: Iterable[ResourceGroup] | None,
    extension_groups: Iterable[ResourceGroup] | None,
    resource_group: ResourceGroup | None = None,
) -> ConcatenatedRows:
    """The subscription's machines and extensions that match ``wanted``, limited to ``resource_group`` if given.

    ``machine_groups`` / ``extension_groups``: the groups whose machines / extensions the caller may read (``None``:
    every group of the subscription)."""
    want_machines, want_extensions = _wanted_types(wanted.resource_type)
    machines = machine_base_queryset().filter(resource_group__subscription=subscription)
    extensions = Extension.objects.select_related("machine__resource_group__subscription").filter(
        machine__resource_group__subscription=subscription
    )
    if resource_group is not None:
        machines = machines.filter(resource_group=resource_group)
        extensions = extensions.filter(machine__resource_group=resource_group)
    if wanted.resource_group is not None:
        machines = machines.filter(resource_group__name__iexact_ascii=wanted.resource_group)
        extensions = extensions.filter(machine__resource_group__name__iexact_ascii=wanted.resource_group)
    if machine_groups is not None:
        machines = machines.filter(resource_group__in=list(machine_groups))
    if extension_groups is not None:
        extensions = extensions.filter(machine__resource_group__in=list(extension_groups))
    machines = _machines(wanted, machines) if want_machines else machines.none()
    extensions = _extensions(wanted, extensions) if want_extensions else extensions.none()
    return ConcatenatedRows(
        machines.order_by("resource_group__name", "name", "pk"),
        extensions.order_by("machine__resource_group__name", "machine__name", "name", "pk"),
    )
