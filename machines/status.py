"""The status rule (DESIGN.md §3). Pure: no Django import, time comes in as an argument.

A machine has no status until its first heartbeat, is Connected while heartbeats keep arriving (at most
``offline_after`` old, boundary included), Disconnected ("Offline" in the portal) after that, and Expired once the
last heartbeat is more than ``expired_after`` old. The ORM predicates in ``querysets.py`` are built from
``status_cutoffs`` so lists, filters and counts agree with this function exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

AWAITING = "AwaitingConnection"
CONNECTED = "Connected"
DISCONNECTED = "Disconnected"
EXPIRED = "Expired"

ALL_STATUSES = (AWAITING, CONNECTED, DISCONNECTED, EXPIRED)

# The portal's words for the ARM values: Azure shows no status before the first heartbeat and says "Offline"
# in its documentation prose for Disconnected.
PORTAL_LABELS = {AWAITING: "", CONNECTED: "Connected", DISCONNECTED: "Offline", EXPIRED: "Expired"}


@dataclass(frozen=True)
class StatusThresholds:
    offline_after: timedelta = timedelta(minutes=25)
    expired_after: timedelta = timedelta(days=45)

    def __post_init__(self) -> None:
        if self.offline_after <= timedelta(0):
            raise ValueError("offline_after must be positive")
        if self.expired_after <= self.offline_after:
            raise ValueError("expired_after must be longer than offline_after")


@dataclass(frozen=True)
class StatusCutoffs:
    """Absolute instants derived from ``now``: a heartbeat at or after ``connected_since`` is Connected,
    one before ``expired_before`` is Expired, anything between is Disconnected."""

    connected_since: datetime
    expired_before: datetime


def status_cutoffs(*, now: datetime, thresholds: StatusThresholds) -> StatusCutoffs:
    return StatusCutoffs(
        connected_since=now - thresholds.offline_after,
        expired_before=now - thresholds.expired_after,
    )


def derive_status(*, last_heartbeat_at: datetime | None, now: datetime, thresholds: StatusThresholds) -> str:
    """The ARM status of a machine whose last heartbeat was ``last_heartbeat_at``, seen at ``now``."""
    if last_heartbeat_at is None:
        return AWAITING
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    if last_heartbeat_at >= cutoffs.connected_since:
        return CONNECTED
    if last_heartbeat_at < cutoffs.expired_before:
        return EXPIRED
    return DISCONNECTED


def transition_time(
    *, last_heartbeat_at: datetime | None, status: str, thresholds: StatusThresholds
) -> datetime | None:
    """The exact moment a machine entered ``status`` given its last heartbeat (not the moment a sweep noticed).

    Connected starts at the heartbeat; Disconnected just after ``offline_after``; Expired after ``expired_after``.
    """
    if last_heartbeat_at is None:
        return None
    if status == CONNECTED:
        return last_heartbeat_at
    if status == DISCONNECTED:
        return last_heartbeat_at + thresholds.offline_after
    if status == EXPIRED:
        return last_heartbeat_at + thresholds.expired_after
    return None


def portal_label(status: str) -> str:
    return PORTAL_LABELS.get(status, status)
