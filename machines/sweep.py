"""The status sweep's plan (DESIGN.md §3): which rows are due, step by step. The statements that move them live in
the one writer of status transitions, ``machines.services.transitions``, which also drives the sweep.

* ``sweep_steps`` lists the transitions in the order they are applied. Each step's ``due`` predicate is a range on
  ``last_heartbeat_at`` (``querysets.status_q``, the same cutoffs every read uses) plus the recorded status it moves
  from, served by the ``(status, last_heartbeat_at)`` index, so a machine already recorded in its derived status is
  never touched again (idempotence) and the work grows with the transitions, not with the fleet.
* A machine recorded Connected (or never recorded) whose last heartbeat is older than ``expired_after`` passes
  through Disconnected first: it gets the event Connected → Disconnected at ``heartbeat + offline_after``, then
  Disconnected → Expired at ``heartbeat + expired_after``, exactly as it would have if the sweep had been running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from machines import status as rules
from machines.querysets import status_q
from machines.status import StatusThresholds, status_cutoffs


@dataclass(frozen=True)
class SweepStep:
    target: str
    offset: timedelta  # the transition happened at last_heartbeat_at + offset
    due: Q
    source: str = ""  # the recorded status it moves from


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
