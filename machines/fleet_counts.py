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

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Q, Sum, Value
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


# Past this many machines not yet swept the read counts with COUNT instead (the sweep is behind or stopped).
DRIFT_LIMIT = 20_000


def drifted_ranges(*, now: datetime, thresholds: StatusThresholds) -> list[tuple[str, str, list]]:
    """The machines whose recorded status is not the one derived at ``now``, as (recorded status, heartbeat
    condition, parameters): per recorded status, the heartbeat ranges outside its own — the sweep's due rows."""
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    # As the ORM passes a datetime (SQLite compares the stored text: an aware value's "+00:00" would shift the
    # boundaries).
    adapt = connection.ops.adapt_datetimefield_value
    connected_since, expired_before = adapt(cutoffs.connected_since), adapt(cutoffs.expired_before)
    never = ("last_heartbeat_at IS NULL", [])
    return [
        (rules.AWAITING, "last_heartbeat_at IS NOT NULL", []),
        (rules.CONNECTED, *never),
        (rules.CONNECTED, "last_heartbeat_at < %s", [connected_since]),
        (rules.DISCONNECTED, *never),
        (rules.DISCONNECTED, "last_heartbeat_at >= %s", [connected_since]),
        (rules.DISCONNECTED, "last_heartbeat_at < %s", [expired_before]),
        (rules.EXPIRED, *never),
        (rules.EXPIRED, "last_heartbeat_at >= %s", [expired_before]),
    ]


def _drifted_sql(scope: CountScope, groups: tuple[str, tuple] | None, *, now: datetime, thresholds: StatusThresholds):
    """``WITH`` clauses naming ``drifted`` (every machine the sweep has still to move, at most ``DRIFT_LIMIT + 1``
    per range) and ``matching`` (those within ``scope``). Each range is its own ``ORDER BY … LIMIT`` walk of the
    ``(status, last_heartbeat_at)`` index, so the plan cannot trade it for a scan of another index or of the table
    (the planner, taking status and heartbeat as independent, expects ~10⁵ rows where there are none)."""
    table = connection.ops.quote_name(Machine._meta.db_table)
    tags = connection.ops.quote_name(MachineTag._meta.db_table)
    columns = "id, resource_group_id, location, os_name, status, last_heartbeat_at"
    arms, params = [], []
    for index, (status, condition, values) in enumerate(drifted_ranges(now=now, thresholds=thresholds)):
        arms.append(
            f"SELECT * FROM (SELECT {columns} FROM {table} WHERE status = %s AND {condition}"  # noqa: S608 - names only
            f" ORDER BY status, last_heartbeat_at LIMIT {DRIFT_LIMIT + 1}) AS range{index}"
        )
        params += [status, *values]
    where, where_params = ["1 = 1"], []
    if groups is not None:
        where.append(f"resource_group_id IN ({groups[0]})")
        where_params += groups[1]
    if scope.location:
        where.append("location = %s")
        where_params.append(scope.location)
    if scope.os_name:
        where.append("os_name = %s")
        where_params.append(scope.os_name)
    if scope.tag is not None:
        key, value = scope.tag
        tag = f"SELECT 1 FROM {tags} AS t WHERE t.machine_id = drifted.id AND lower(t.key) = lower(%s)"  # noqa: S608
        where_params.append(key)
        if value is not None:
            tag += " AND t.value = %s"
            where_params.append(value)
        where.append(f"EXISTS ({tag})")
    drifted = " UNION ALL ".join(arms)
    matching = " AND ".join(where)
    sql = f"WITH drifted AS ({drifted}), matching AS (SELECT * FROM drifted WHERE {matching})"  # noqa: S608
    return sql, params + where_params


def _summary_q(scope: CountScope, group_ids) -> Q:
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


class TooMuchDrift(Exception):
    """More than ``DRIFT_LIMIT`` machines wait for the sweep: the summary read would cost more than a COUNT."""


def counts_by_group(scope: CountScope, *, now: datetime, thresholds: StatusThresholds) -> dict[int, dict[str, int]]:
    """Per resource group id, the machines in ``scope`` per status derived at ``now`` (groups with none left out).
    Raises ``TooMuchDrift`` when the sweep is far behind."""
    group_ids, groups = None, None
    if scope.groups is not None:  # a subquery, not a round trip of its own
        group_ids = ResourceGroup.objects.filter(scope.groups).order_by().values("pk")
        try:
            groups = group_ids.query.sql_with_params()
        except EmptyResultSet:  # no group at all (a user with no grant)
            return {}
    where = _summary_q(scope, group_ids)
    folded = FleetCount.objects.filter(where).values_list("resource_group_id", "status").annotate(n=Sum("count"))
    pending = FleetCountDelta.objects.filter(where).values_list("resource_group_id", "status").annotate(n=Sum("delta"))
    folded_sql, folded_params = folded.order_by().query.sql_with_params()
    pending_sql, pending_params = pending.order_by().query.sql_with_params()
    drifted_sql, drifted_params = _drifted_sql(scope, groups, now=now, thresholds=thresholds)
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    derived = "CASE WHEN last_heartbeat_at IS NULL THEN %s WHEN last_heartbeat_at >= %s THEN %s"
    derived += " WHEN last_heartbeat_at >= %s THEN %s ELSE %s END"
    adapt = connection.ops.adapt_datetimefield_value
    derived_params = [rules.AWAITING, adapt(cutoffs.connected_since), rules.CONNECTED, adapt(cutoffs.expired_before),
                      rules.DISCONNECTED, rules.EXPIRED]  # fmt: skip
    # One statement, one snapshot: the folded rows, the deltas, and the drifted machines out of their recorded status
    # and into their derived one.
    sql = (
        f"{drifted_sql} {folded_sql} UNION ALL {pending_sql}"  # noqa: S608 - compiled SQL and placeholders only
        " UNION ALL SELECT resource_group_id, status, -COUNT(*) FROM matching GROUP BY resource_group_id, status"
        f" UNION ALL SELECT resource_group_id, {derived}, COUNT(*) FROM matching GROUP BY resource_group_id, 2"
        " UNION ALL SELECT NULL, NULL, COUNT(*) FROM drifted"  # the one row without a group: how many were read
    )
    # (Its estimate counts each range's LIMIT in full: with PostgreSQL's JIT on, ~50 ms would go to compiling a
    # statement that runs in a few — the portal's sessions run without it, arcportal/database.py.)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*drifted_params, *folded_params, *pending_params, *derived_params])
        rows = cursor.fetchall()
    read = sum(int(n) for group_id, _, n in rows if group_id is None)
    if read > DRIFT_LIMIT:
        raise TooMuchDrift(read)
    rows = [row for row in rows if row[0] is not None]
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
    try:
        by_group = counts_by_group(scope, now=now, thresholds=filterset.thresholds)
    except TooMuchDrift:
        return ListCounts(machine_status_counts(queryset=filterset.qs, now=now))
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
