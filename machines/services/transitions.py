"""The one writer of status transitions: ``status``, ``last_status_change``, one ``MachineStatusEvent`` per
transition and the webhook fan-out, always together (DESIGN.md §3, docs/status-engine.md).

Two callers, two shapes of the same write:

* a heartbeat that changes the status (``machine_record_heartbeat``: the first one, or back from Offline/Expired),
  one machine at a time, from the agent plane's ingest and from the heartbeat flush;
* the status sweep (``machine_status_sweep``), set-based: per step of ``machines.sweep.sweep_steps`` it claims up to
  ``SWEEP_CHUNK`` due rows (``FOR UPDATE SKIP LOCKED`` where the database has row locks, so overlapping sweeps take
  disjoint rows), updates them and inserts one event each, in one statement on PostgreSQL (``_SQL_CHUNK``) or three
  ORM statements elsewhere (``sweep_chunk_orm``), each chunk committing on its own.

Both end in ``_transitions_recorded``, which creates the webhook deliveries in the same transaction
(``machines.webhooks``; they are enqueued once it commits). Nothing else writes these columns or that table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from arcportal.exceptions import NotFound
from machines import status as rules
from machines.activity import status_events_mirror
from machines.conf import status_thresholds
from machines.models import Machine, MachineStatusEvent
from machines.sweep import SweepStep, sweep_steps
from machines.webhooks import webhook_deliveries_create

logger = logging.getLogger("machines.services")

SWEEP_CHUNK = 5000
SWEEP_REASON = "Status sweep"
HEARTBEAT_REASON = "Heartbeat"


@dataclass(frozen=True)
class StatusEventRow:
    """One recorded transition, as the sweep and the heartbeat hand it to the notifiers."""

    id: int
    machine_id: int
    from_status: str
    to_status: str
    at: datetime
    reason: str

    @classmethod
    def of(cls, event: MachineStatusEvent) -> StatusEventRow:
        return cls(event.pk, event.machine_id, event.from_status, event.to_status, event.at, event.reason)


def _transitions_recorded(events: Sequence[StatusEventRow]) -> None:
    """What follows every recorded transition, in the transaction that recorded it: the webhook deliveries and the
    activity-log events (``machines.activity``)."""
    if events:
        webhook_deliveries_create(events=events)
        status_events_mirror(events)


# --- A heartbeat that changes the status ---------------------------------------------------------------------


@transaction.atomic
def machine_record_heartbeat(*, machine_id: int, at: datetime, facts: Mapping[str, Any] | None = None) -> str:
    """Record a heartbeat with one UPDATE; if the machine was not Connected, record that transition at once.

    Returns the machine's status after the heartbeat (always Connected).
    """
    facts = dict(facts or {})
    previous = Machine.objects.select_for_update().filter(pk=machine_id).values_list("status", flat=True).first()
    if previous is None:
        raise NotFound("The machine no longer exists.")
    update: dict[str, Any] = {"last_heartbeat_at": at, **facts}
    if previous != rules.CONNECTED:
        update.update(status=rules.CONNECTED, last_status_change=at)
        event = MachineStatusEvent.objects.create(
            machine_id=machine_id, from_status=previous, to_status=rules.CONNECTED, at=at, reason=HEARTBEAT_REASON
        )
        _transitions_recorded([StatusEventRow.of(event)])
    Machine.objects.filter(pk=machine_id).update(**update)
    return rules.CONNECTED


# --- The status sweep ----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SweepResult:
    transitions: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.transitions.values())


def machine_status_sweep(*, now: datetime) -> SweepResult:
    """Recompute every machine's status at ``now`` and record each transition (DESIGN.md §3; plan: ``machines.sweep``).

    Per target status, due machines are claimed in chunks of ``SWEEP_CHUNK`` (``FOR UPDATE SKIP LOCKED`` where the
    database has row locks, so overlapping sweeps take disjoint rows); each chunk updates ``status`` and
    ``last_status_change`` (the exact transition time), inserts one event per machine, creates the webhook
    deliveries and commits on its own, and the deliveries are enqueued only after that commit. A sweep killed
    mid-way leaves whole chunks done and the rest for the next sweep. Cost grows with the transitions.
    """
    thresholds = status_thresholds()
    done: dict[str, int] = {}
    for step in sweep_steps(now=now, thresholds=thresholds):
        count = 0
        while True:
            with transaction.atomic():
                events = sweep_chunk(step, limit=SWEEP_CHUNK)
                _transitions_recorded(events)
            count += len(events)
            if len(events) < SWEEP_CHUNK:
                break
        done[step.target] = done.get(step.target, 0) + count
    result = SweepResult(done)
    if result.total:
        logger.info("status sweep at %s: %s", now.isoformat(), done)
    return result
