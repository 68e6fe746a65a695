"""The Machines blade's counts from the fleet's counts summary (docs/decisions.md 122, docs/status-engine.md §8).

A machine's status is derived at ``now`` from its last heartbeat; the sweep records it in ``Machine.status`` within
one sweep period. The summary (``FleetCount`` + ``FleetCountDelta``, kept by database triggers) counts machines per
resource group, location, OS, tag and *recorded* status. The exact counts at ``now`` are therefore

    summary by recorded status − the machines whose recorded status is not their derived one (by recorded status)
                               + the same machines (by derived status)

and those machines are exactly the rows the sweep has still to move, found through the ``(status, last_heartbeat_at)``
index, so the counts cost grows with the transitions not yet swept, never with the fleet. One SQL statement (a
UNION ALL) reads the summary, the unfolded deltas and the drifted machines, so they come from one snapshot.

The summary answers the filters it has dimensions for: subscription, resource group, location, OS, status, one tag,
and what the user may read when that is whole subscriptions or groups. A name search or a role held on single
machines falls back to ``COUNT`` over the filtered machines (``machine_status_counts``), as does another database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, Count, Exists, OuterRef, Q, Sum, Value, When
from django.db.models.functions import Lower

from machines import governance
from machines import status as rules
from machines.models import FleetCount, FleetCountDelta, Machine, MachineTag, ResourceGroup
from machines.selectors import machine_status_counts
from machines.status import StatusThresholds, status_cutoffs

VENDORS = ("postgresql", "sqlite")


def available() -> bool:
    """True where migration ``0013_fleet_counts`` installed the triggers."""
    return connection.vendor in VENDORS


@dataclass(frozen=True)
class CountScope:
    """Which machines to count: ``groups`` filters ``ResourceGroup`` (``None``: every group), then location, OS and
    one tag filter (``(key, value)``, ``value`` ``None`` for "has the key")."""

    groups: Q | None = None
    location: str = ""
    os_name: str = ""
    tag: tuple[str, str | None] | None = None


@dataclass(frozen=True)
class ListCounts:
    """The counts strip (``total`` and one entry per status) and, when the summary answered, each group's size
    (what the resource-group sort pages by)."""

    counts: dict[str, int]
    group_sizes: dict[int, int] | None = None


# --- Reading ------------------------------------------------------------------------------------------------------


def _derived_status(cutoffs) -> Case:
    return Case(
        When(last_heartbeat_at__isnull=True, then=Value(rules.AWAITING)),
        When(last_heartbeat_at__gte=cutoffs.connected_since, then=Value(rules.CONNECTED)),
        When(last_heartbeat_at__gte=cutoffs.expired_before, then=Value(rules.DISCONNECTED)),
        default=Value(rules.EXPIRED),
    )


def drifted_q(*, now: datetime, thresholds: StatusThresholds) -> Q:
    """Machines whose recorded status is not the one derived at ``now``: per recorded status, the heartbeat ranges
    outside its own (each an equality on ``status`` and a range on the heartbeat, as the sweep claims them)."""
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    never = Q(last_heartbeat_at__isnull=True)
    fresh = Q(last_heartbeat_at__gte=cutoffs.connected_since)
    expired = Q(last_heartbeat_at__lt=cutoffs.expired_before)
    return (
        Q(status=rules.AWAITING, last_heartbeat_at__isnull=False)
        | Q(status=rules.CONNECTED) & (never | Q(last_heartbeat_at__lt=cutoffs.connected_since))
        | Q(status=rules.DISCONNECTED) & (never | fresh | expired)
        | Q(status=rules.EXPIRED) & (never | Q(last_heartbeat_at__gte=cutoffs.expired_before))
    )


def _summary_q(scope: CountScope, group_ids: list[int] | None) -> Q:
    q = Q() if group_ids is None else Q(resource_group_id__in=group_ids)
    if scope.location:
        q &= Q(location=scope.location)
    if scope.os_name:
        q &= Q(os_name=scope.os_name)
    if scope.tag is None:
        return q & Q(tag_key="")
    key, value = scope.tag
    q &= Q(tag_key=Lower(Value(key)))
    return q if value is None else q & Q(tag_value=value)


def _drifted_machines(scope: CountScope, group_ids: list[int] | None, *, now: datetime, thresholds: StatusThresholds):
    machines = Machine.objects.filter(drifted_q(now=now, thresholds=thresholds))
    if group_ids is not None:
        machines = machines.filter(resource_group_id__in=group_ids)
    if scope.location:
        machines = machines.filter(location=scope.location)
    if scope.os_name:
        machines = machines.filter(os_name=scope.os_name)
    if scope.tag is not None:
        key, value = scope.tag
        tags = MachineTag.objects.annotate(lower_key=Lower("key")).filter(
            machine_id=OuterRef("pk"), lower_key=Lower(Value(key))
        )
        machines = machines.filter(Exists(tags if value is None else tags.filter(value=value)))
    return machines.order_by()


def counts_by_group(scope: CountScope, *, now: datetime, thresholds: StatusThresholds) -> dict[int, dict[str, int]]:
    """Per resource group id, the machines in ``scope`` per status derived at ``now`` (groups with none left out)."""
    group_ids = None
    if scope.groups is not None:
        group_ids = list(ResourceGroup.objects.filter(scope.groups).values_list("pk", flat=True))
        if not group_ids:
            return {}
    where = _summary_q(scope, group_ids)
    folded = FleetCount.objects.filter(where).values_list("resource_group_id", "status").annotate(n=Sum("count"))
    pending = FleetCountDelta.objects.filter(where).values_list("resource_group_id", "status").annotate(n=Sum("delta"))
    drifted = _drifted_machines(scope, group_ids, now=now, thresholds=thresholds)
    leaving = drifted.values_list("resource_group_id", "status").annotate(n=Count("pk") * -1)
    arriving = (
        drifted.annotate(derived=_derived_status(status_cutoffs(now=now, thresholds=thresholds)))
        .values_list("resource_group_id", "derived")
        .annotate(n=Count("pk"))
    )
    rows = folded.order_by().union(pending.order_by(), leaving, arriving, all=True)
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(rules.ALL_STATUSES, 0))
    for group_id, status, n in rows:
        result[group_id][status] = result[group_id].get(status, 0) + int(n or 0)
    return {group_id: counts for group_id, counts in result.items() if any(counts.values())}


def _list_scope(filterset, principal) -> CountScope | None:
    """The blade's filters and the user's read access as a ``CountScope``; ``None`` when the summary can't say."""
    data = filterset.form.cleaned_data
    if not available() or data.get("q"):
        return None
    try:
        groups = governance.machine_scope_groups_q(principal)
    except governance.MachineGrantsBelowGroups:
        return None
    if data.get("subscription"):
        groups = (groups or Q()) & Q(subscription__subscription_id=data["subscription"])
    if data.get("resource_group"):
        groups = (groups or Q()) & Q(name__iexact_ascii=data["resource_group"].strip())
    return CountScope(groups=groups, location=data.get("location") or "", os_name=data.get("os") or "",
                      tag=data.get("tag"))  # fmt: skip


def machine_list_counts(*, filterset, principal, now: datetime) -> ListCounts:
    """The counts strip of the blade's list (``filterset`` valid, over the machines ``principal`` may read), from the
    summary where it can answer, else ``COUNT`` over ``filterset.qs``."""
    scope = _list_scope(filterset, principal)
    if scope is None:
        return ListCounts(machine_status_counts(queryset=filterset.qs, now=now))
    by_group = counts_by_group(scope, now=now, thresholds=filterset.thresholds)
    wanted = filterset.form.cleaned_data.get("status")
    counts = dict.fromkeys(rules.ALL_STATUSES, 0)
    sizes = {}
    for group_id, per_status in by_group.items():
        kept = {status: n for status, n in per_status.items() if not wanted or status == wanted}
        for status, n in kept.items():
            counts[status] += n
        if sum(kept.values()):
            sizes[group_id] = sum(kept.values())
    return ListCounts({"total": sum(counts.values()), **counts}, sizes)


# --- Keeping ------------------------------------------------------------------------------------------------------

_FOLD_POSTGRESQL = """
WITH moved AS (
    DELETE FROM machines_fleetcountdelta
    RETURNING resource_group_id, location, os_name, status, tag_key, tag_value, delta
), summed AS (
    SELECT resource_group_id, location, os_name, status, tag_key, tag_value, SUM(delta) AS n FROM moved
     GROUP BY resource_group_id, location, os_name, status, tag_key, tag_value
)
INSERT INTO machines_fleetcount (resource_group_id, location, os_name, status, tag_key, tag_value, "count")
SELECT resource_group_id, location, os_name, status, tag_key, tag_value, n FROM summed WHERE n <> 0
 ORDER BY resource_group_id, location, os_name, status, tag_key, tag_value
    ON CONFLICT (resource_group_id, location, os_name, status, tag_key, tag_value)
    DO UPDATE SET "count" = machines_fleetcount."count" + EXCLUDED."count"
"""
# SQLite has one writer: the transaction (BEGIN IMMEDIATE) holds the lock from its first statement to the delete.
_FOLD_SQLITE = """
INSERT INTO machines_fleetcount (resource_group_id, location, os_name, status, tag_key, tag_value, "count")
SELECT resource_group_id, location, os_name, status, tag_key, tag_value, SUM(delta) FROM machines_fleetcountdelta
 WHERE true GROUP BY resource_group_id, location, os_name, status, tag_key, tag_value HAVING SUM(delta) <> 0
    ON CONFLICT (resource_group_id, location, os_name, status, tag_key, tag_value)
    DO UPDATE SET "count" = "count" + excluded."count"
"""


def fleet_counts_compact() -> int:
    """Fold the deltas into the summary (after each status sweep, ``machine_status_sweep_task``). One transaction, so
    a reader sees all of them either as deltas or folded. Safe to run twice at once on PostgreSQL (each delta row
    is deleted by one of them). Returns the summary rows changed."""
    if not available():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_FOLD_POSTGRESQL)
            changed = cursor.rowcount
        else:
            cursor.execute(_FOLD_SQLITE)
            changed = cursor.rowcount
            cursor.execute("DELETE FROM machines_fleetcountdelta")
        cursor.execute('DELETE FROM machines_fleetcount WHERE "count" = 0')
    return max(changed, 0)


_REFILL = """
INSERT INTO machines_fleetcount (resource_group_id, location, os_name, status, tag_key, tag_value, "count")
SELECT resource_group_id, location, os_name, status, '', '', COUNT(*) FROM machines_machine
 GROUP BY resource_group_id, location, os_name, status
UNION ALL
SELECT m.resource_group_id, m.location, m.os_name, m.status, lower(t.key), t.value, COUNT(*)
  FROM machines_machinetag AS t JOIN machines_machine AS m ON m.id = t.machine_id
 GROUP BY m.resource_group_id, m.location, m.os_name, m.status, lower(t.key), t.value
"""


def fleet_counts_rebuild() -> None:
    """Recount the summary from the machine and tag tables (a repair; writers wait meanwhile on PostgreSQL)."""
    if not available():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("LOCK TABLE machines_machine, machines_machinetag IN SHARE MODE")
        cursor.execute("DELETE FROM machines_fleetcountdelta")
        cursor.execute("DELETE FROM machines_fleetcount")
        cursor.execute(_REFILL)


def fleet_counts_clear_if_no_machines(**kwargs) -> None:
    """After ``migrate`` or ``flush`` (``post_migrate``): with no machine left, no count may be left either. SQLite's
    ``flush`` deletes table by table in any order, so the triggers of the machine rows it deletes after the summary
    tables leave ``-1`` deltas behind; this removes them."""
    tables = connection.introspection.table_names()
    if available() and FleetCount._meta.db_table in tables and not Machine.objects.exists():
        FleetCountDelta.objects.all().delete()
        FleetCount.objects.all().delete()
