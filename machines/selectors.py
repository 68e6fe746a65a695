"""Every read that views, the ARM API and tasks share. Selectors return querysets or plain values.

A malformed id is "not found" (``None``); a failing database is an error, never "not found".
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Count, Prefetch, QuerySet
from django.db.models.functions import Lower

from machines.conf import status_thresholds
from machines.filters import MachineFilterSet
from machines.models import Machine, MachineStatusEvent, MachineTag, ResourceGroup, Subscription
from machines.status import EXPIRED, derive_status


def subscription_list() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("tenant").order_by("display_name")


def subscription_get(*, subscription_id: str) -> Subscription | None:
    """The subscription with this id; a malformed GUID is "not found" (``None``). Anything else, such as a database
    that does not answer, is raised as it is: an outage must never look like "not found"."""
    try:
        value = uuid.UUID(str(subscription_id))
    except ValueError:
        return None
    return Subscription.objects.select_related("tenant").filter(subscription_id=value).first()


def resource_group_list(*, subscription: Subscription | None = None) -> QuerySet[ResourceGroup]:
    qs = ResourceGroup.objects.select_related("subscription").annotate(machine_count=Count("machines"))
    if subscription is not None:
        qs = qs.filter(subscription=subscription)
    return qs.order_by("name")


def resource_group_get(*, subscription: Subscription, name: str) -> ResourceGroup | None:
    return (
        ResourceGroup.objects.select_related("subscription")
        .filter(subscription=subscription, name__iexact_ascii=name)
        .first()
    )


def machine_base_queryset() -> QuerySet[Machine]:
    """Machines with what every page and the API print: group, subscription and tags, in two queries."""
    return Machine.objects.select_related("resource_group__subscription").prefetch_related(
        Prefetch("tag_set", queryset=MachineTag.objects.order_by("key"))
    )


def machine_get(*, resource_group: ResourceGroup, name: str) -> Machine | None:
    return machine_base_queryset().filter(resource_group=resource_group, name__iexact_ascii=name).first()


def machine_get_by_id(*, pk: int) -> Machine | None:
    return machine_base_queryset().filter(pk=pk).first()


def machine_by_vm_id(*, vm_id: str) -> Machine | None:
    """The machine with this vmId (unique; the agent plane's certificate request): one indexed lookup."""
    try:
        value = uuid.UUID(str(vm_id))
    except ValueError:
        return None
    try:
        return Machine.objects.select_related("resource_group__subscription").get(vm_id=value)
    except Machine.DoesNotExist:
        return None


def machine_is_expired(*, last_heartbeat_at: datetime | None, now: datetime) -> bool:
    """True once the last heartbeat is older than ``ARC_EXPIRED_AFTER_DAYS``: the agent plane refuses the machine's
    heartbeats (403) until it is connected again."""
    return derive_status(last_heartbeat_at=last_heartbeat_at, now=now, thresholds=status_thresholds()) == EXPIRED


def machine_status_counts(*, queryset: QuerySet[Machine], now: datetime) -> dict[str, int]:
    return queryset.order_by().status_counts(now=now, thresholds=status_thresholds())


def machine_status_events(*, machine: Machine, limit: int = 100) -> QuerySet[MachineStatusEvent]:
    return MachineStatusEvent.objects.filter(machine=machine).order_by("-at", "-id")[:limit]


def machine_tags(machine: Machine) -> dict[str, str]:
    return {tag.key: tag.value for tag in machine.tag_set.all()}


# --- Portal Machines blade ------------------------------------------------------------------------------------


def machine_list_filtered(*, params, now: datetime, queryset: QuerySet[Machine] | None = None):
    """The Machines blade's list: ``MachineFilterSet`` over ``queryset`` (default: the base queryset; the portal
    passes the machines the user may read, ``machines.governance.machines_permitted``), status derived at ``now``.

    Returns the FilterSet; ``.qs`` is the filtered and ordered queryset, ``.errors`` says which parameter was bad.
    """
    return MachineFilterSet(params, queryset=machine_base_queryset() if queryset is None else queryset, now=now)


def machine_fleet_exists() -> bool:
    return Machine.objects.exists()


def machines_with_status(*, machines, now: datetime) -> list[Machine]:
    """Each machine with ``derived_status`` set by the status rule at ``now`` (never the stored field)."""
    thresholds = status_thresholds()
    result = list(machines)
    for machine in result:
        machine.derived_status = derive_status(
            last_heartbeat_at=machine.last_heartbeat_at, now=now, thresholds=thresholds
        )
    return result


def machine_ids_in_order(*, queryset: QuerySet[Machine]) -> QuerySet:
    """Only the primary keys of ``queryset``, in its order: a page is chosen on these narrow rows (the sort never
    carries the wide machine rows), then ``machines_by_ids_in_order`` loads just that page."""
    return queryset.prefetch_related(None).values_list("pk", flat=True)


class MachinePageIds:
    """The ids of a filtered, ordered machine list, sliced one page at a time (what ``Paginator`` needs).

    Sorted by resource group, sorting the whole fleet across the join is the expensive part; instead the page is
    read group by group: each group's size (from the counts summary, else one GROUP BY), then only the groups the
    page touches are read, each in name order. The result is the same as ``order_machines(..., "resource_group")``.
    """

    def __init__(self, queryset: QuerySet[Machine], *, sort: str | None, group_sizes: dict[int, int] | None = None):
        self.queryset = queryset
        self.sort = sort or ""
        self.group_sizes = group_sizes  # each group's machines in ``queryset`` when known (machines.fleet_counts)

    def __getitem__(self, window: slice) -> list[int]:
        offset, stop = window.start or 0, window.stop
        if self.sort.lstrip("-") != "resource_group":
            return list(machine_ids_in_order(queryset=self.queryset)[offset:stop])
        return self._by_group(offset, stop - offset)

    def _by_group(self, offset: int, limit: int) -> list[int]:
        descending = self.sort.startswith("-")
        unordered = self.queryset.order_by()
        sizes = self.group_sizes
        if sizes is None:
            by_group = unordered.values("resource_group_id").annotate(n=Count("*"))
            sizes = dict(by_group.values_list("resource_group_id", "n"))
        group_order = ["-lower_name", "-pk"] if descending else ["lower_name", "pk"]
        groups = (
            ResourceGroup.objects.filter(pk__in=list(sizes))
            .annotate(lower_name=Lower("name"))
            .order_by(*group_order)
            .values_list("pk", flat=True)
        )
        name_order = [Lower("name").desc(), "-pk"] if descending else [Lower("name").asc(), "pk"]
        ids: list[int] = []
        position = 0
        for group_id in groups:
            size = sizes[group_id]
            if position + size > offset:
                start = max(0, offset - position)
                wanted = limit - len(ids)
                in_group = unordered.filter(resource_group_id=group_id).order_by(*name_order)
                ids += list(in_group.values_list("pk", flat=True)[start : start + wanted])
                if len(ids) >= limit:
                    break
            position += size
        return ids


# What the list grid, its poll and the CSV show. The rest of a machine row (public key, JSON blobs, OS details) is
# wide and costs time to load and decode on every poll, so list reads leave it in the database.
MACHINE_LIST_FIELDS = (
    "id",
    "name",
    "location",
    "os_name",
    "os_type",
    "os_sku",
    "agent_version",
    "last_heartbeat_at",
    "resource_group__id",
    "resource_group__name",
    "resource_group__subscription__id",
    "resource_group__subscription__subscription_id",
    "resource_group__subscription__display_name",
)


def machine_list_columns(*, queryset: QuerySet[Machine]) -> QuerySet[Machine]:
    return queryset.only(*MACHINE_LIST_FIELDS)


def machines_by_ids_in_order(*, ids) -> list[Machine]:
    ids = list(ids)
    page = machine_list_columns(queryset=machine_base_queryset().filter(pk__in=ids))
    by_pk = {machine.pk: machine for machine in page}
    return [by_pk[pk] for pk in ids if pk in by_pk]


def machine_list_by_ids(*, ids) -> QuerySet[Machine]:
    return machine_base_queryset().filter(pk__in=list(ids)).order_by("pk")


def machine_status_events_since(*, machine: Machine, since: datetime) -> list[MachineStatusEvent]:
    """Transitions from ``since`` on, plus the last one before it (the status the window starts in)."""
    before = MachineStatusEvent.objects.filter(machine=machine, at__lt=since).order_by("-at", "-id")[:1]
    recent = MachineStatusEvent.objects.filter(machine=machine, at__gte=since).order_by("at", "id")
    return [*before, *recent]


def resource_group_names() -> list[str]:
    """Distinct resource group names (any subscription), for the list's Resource group filter."""
    names = ResourceGroup.objects.order_by("name").values_list("name", flat=True).distinct()
    return list(dict.fromkeys(names))


def resource_group_machine_count(*, resource_group: ResourceGroup) -> int:
    return Machine.objects.filter(resource_group=resource_group).count()


# --- ARM plane -----------------------------------------------------------------------------------------------


def machine_list_arm(*, subscription: Subscription, resource_group: ResourceGroup | None = None) -> QuerySet[Machine]:
    """Machines of a subscription (or one of its groups) with tags and extensions, in a stable order for paging."""
    from machines.models import Extension

    qs = machine_base_queryset().filter(resource_group__subscription=subscription)
    if resource_group is not None:
        qs = qs.filter(resource_group=resource_group)
    return qs.prefetch_related(Prefetch("extensions", queryset=Extension.objects.order_by("name"))).order_by(
        "resource_group__name", "name", "pk"
    )


def extension_list(*, machine: Machine):
    from machines.models import Extension

    return (
        Extension.objects.filter(machine=machine)
        .select_related("machine__resource_group__subscription")
        .order_by("name", "pk")
    )


def extension_get(*, machine: Machine, name: str):
    return extension_list(machine=machine).filter(name__iexact_ascii=name).first()


def async_operation_get(*, subscription_id: str, operation_id: str):
    """An ARM asynchronous operation by its id, within the subscription the URL names."""
    from machines.models import AsyncOperation

    try:
        key = uuid.UUID(str(operation_id))
    except ValueError:
        return None
    operation = AsyncOperation.objects.filter(pk=key).first()
    if operation is None or operation.subscription_id.lower() != str(subscription_id).lower():
        return None
    return operation


def run_command_list(*, machine: Machine):
    from machines.models import RunCommand

    return (
        RunCommand.objects.filter(machine=machine)
        .select_related("machine__resource_group__subscription")
        .order_by("name", "pk")
    )


def run_command_get(*, machine: Machine, name: str):
    return run_command_list(machine=machine).filter(name__iexact_ascii=name).first()
