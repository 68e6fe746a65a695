"""The status sweep's building blocks (DESIGN.md §3): which rows are due, and how one chunk of them moves.

``machines.services.machine_status_sweep`` drives these. Every statement the sweep runs is defined here, once:

* ``sweep_steps`` lists the transitions in the order they are applied. Each step's ``due`` predicate is a range on
  ``last_heartbeat_at`` (``querysets.status_q``, the same cutoffs every read uses) plus the recorded status it moves
  from, served by the ``(status, last_heartbeat_at)`` index, so a machine already recorded in its derived status is
  never touched again (idempotence) and the work grows with the transitions, not with the fleet.
* A machine recorded Connected (or never recorded) whose last heartbeat is older than ``expired_after`` passes
  through Disconnected first: it gets the event Connected → Disconnected at ``heartbeat + offline_after``, then
  Disconnected → Expired at ``heartbeat + expired_after``, exactly as it would have if the sweep had been running.
* ``sweep_chunk`` claims up to ``limit`` due rows (``FOR UPDATE SKIP LOCKED`` where the database has row locks,
  so overlapping sweeps take disjoint rows), updates them and inserts one event each, inside the caller's
  transaction. On PostgreSQL that is one statement (``_SQL_CHUNK``); elsewhere three ORM statements with the
  same effect (``sweep_chunk_orm``). Both return the events written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from machines import status as rules
from machines.models import Machine, MachineStatusEvent
from machines.querysets import status_q
from machines.status import StatusThresholds, status_cutoffs

SWEEP_REASON = "Status sweep"


@dataclass(frozen=True)
class SweepStep:
    target: str
    offset: timedelta  # the transition happened at last_heartbeat_at + offset
    due: Q
    source: str = ""  # the recorded status it moves from


@dataclass(frozen=True)
class StatusEventRow:
    """One recorded transition, as the sweep and the heartbeat hand it to the notifiers."""

    id: int
    machine_id: int
    from_status: str
    to_status: str
    at: datetime
    reason: str


def sweep_steps(*, now: datetime, thresholds: StatusThresholds) -> list[SweepStep]:
    """The transitions, in order, one step per (recorded status, target status).

    Each predicate is an *equality* on the recorded status plus a range on the heartbeat, and the claim orders by
    the heartbeat, so PostgreSQL walks the ``(status, last_heartbeat_at)`` index from the right end and stops
    after ``limit`` due rows, whatever its estimates say. (With ``status <> x`` or ``IN`` lists and a bare LIMIT
    the planner, assuming status and heartbeat independent, may pick a sequential scan over the whole fleet to
    find rows that do not exist.) A fleet of long-offline machines therefore costs nothing once recorded.
    """
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    fresh = status_q(rules.CONNECTED, now=now, thresholds=thresholds)
    stale = Q(last_heartbeat_at__lt=cutoffs.connected_since)  # Disconnected or Expired by now
    offline = status_q(rules.DISCONNECTED, now=now, thresholds=thresholds)
    expired = status_q(rules.EXPIRED, now=now, thresholds=thresholds)
    plan = [
        # Heartbeats arrived that were not recorded as transitions (the heartbeat service records its own).
        (rules.DISCONNECTED, rules.CONNECTED, fresh),
        (rules.EXPIRED, rules.CONNECTED, fresh),
        (rules.AWAITING, rules.CONNECTED, fresh),
        # Older than the offline threshold: Disconnected, even when already past expiry (the Expired step follows).
        (rules.CONNECTED, rules.DISCONNECTED, stale),
        (rules.AWAITING, rules.DISCONNECTED, stale),
        # Recorded Expired but back in the Disconnected range (only after ARC_EXPIRED_AFTER_DAYS was raised).
        (rules.EXPIRED, rules.DISCONNECTED, offline),
        (rules.DISCONNECTED, rules.EXPIRED, expired),
    ]
    offsets = {rules.CONNECTED: timedelta(0), rules.DISCONNECTED: thresholds.offline_after}
    offsets[rules.EXPIRED] = thresholds.expired_after
    return [
        SweepStep(target, offsets[target], Q(status=source) & heartbeat, source) for source, target, heartbeat in plan
    ]


def _due_rows(step: SweepStep, *, limit: int):
    """The claim (ORM path): due rows oldest first, locked where the database can, skipping rows others hold."""
    return (
        Machine.objects.filter(step.due)
        .order_by("last_heartbeat_at", "pk")
        .select_for_update(skip_locked=True)
        .values_list("pk", "status", "last_heartbeat_at")[:limit]
    )


def sweep_chunk_orm(step: SweepStep, *, limit: int, recorded_at: datetime | None = None) -> list[StatusEventRow]:
    recorded_at = recorded_at or timezone.now()
    rows = list(_due_rows(step, limit=limit))
    if not rows:
        return []
    ids = [pk for pk, _, _ in rows]
    Machine.objects.filter(pk__in=ids).update(
        status=step.target, last_status_change=F("last_heartbeat_at") + step.offset
    )
    events = MachineStatusEvent.objects.bulk_create(
        [
            MachineStatusEvent(
                machine_id=pk,
                from_status=previous,
                to_status=step.target,
                at=beat + step.offset,
                reason=SWEEP_REASON,
                recorded_at=recorded_at,
            )
            for pk, previous, beat in rows
        ]
    )
    return [StatusEventRow(e.pk, e.machine_id, e.from_status, e.to_status, e.at, e.reason) for e in events]


# One statement per chunk: claim (CTE ``due``), update (CTE ``upd``), insert the events, return them.
_SQL_CHUNK = """
WITH due (id, status) AS ({claim}),
upd AS (
    UPDATE {machine} AS m
       SET status = %s, last_status_change = m.last_heartbeat_at + %s::interval
      FROM due
     WHERE m.id = due.id
 RETURNING m.id AS machine_id, due.status AS from_status, m.last_status_change AS at
)
INSERT INTO {event} (machine_id, from_status, to_status, at, reason, recorded_at)
SELECT machine_id, from_status, %s, at, %s, %s FROM upd
RETURNING id, machine_id, from_status, to_status, at, reason
"""


def sweep_chunk_sql_statement(step: SweepStep, *, limit: int, recorded_at: datetime) -> tuple[str, list]:
    """The one statement of a PostgreSQL chunk, with its parameters (``bench/sweep.py`` EXPLAINs it too)."""
    # Ordered by heartbeat only: the index delivers that order, so the scan stops after ``limit`` due rows.
    claim = (
        Machine.objects.filter(step.due)
        .order_by("last_heartbeat_at")
        .select_for_update(skip_locked=True)
        .values("pk", "status")[:limit]
    )
    claim_sql, claim_params = claim.query.get_compiler(using=claim.db).as_sql()
    qn = connection.ops.quote_name
    sql = _SQL_CHUNK.format(
        claim=claim_sql, machine=qn(Machine._meta.db_table), event=qn(MachineStatusEvent._meta.db_table)
    )
    return sql, [*claim_params, step.target, step.offset, step.target, SWEEP_REASON, recorded_at]


def sweep_chunk_sql(step: SweepStep, *, limit: int, recorded_at: datetime | None = None) -> list[StatusEventRow]:
    sql, params = sweep_chunk_sql_statement(step, limit=limit, recorded_at=recorded_at or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [StatusEventRow(*row) for row in cursor.fetchall()]


def sweep_chunk(step: SweepStep, *, limit: int, recorded_at: datetime | None = None) -> list[StatusEventRow]:
    if connection.vendor == "postgresql":
        return sweep_chunk_sql(step, limit=limit, recorded_at=recorded_at)
    return sweep_chunk_orm(step, limit=limit, recorded_at=recorded_at)
