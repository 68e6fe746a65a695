"""The status rule (DESIGN.md §3). Pure: no Django import, time comes in as an argument.

The vocabulary the portal uses for each status (``VOCABULARY``) is defined here too, once.

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
# In ARM's enum of ``properties.status`` too, but never derived here (an agent in error still heartbeats).
ERROR = "Error"

ALL_STATUSES = (AWAITING, CONNECTED, DISCONNECTED, EXPIRED)
# ``properties.status`` as the ARM schema lists it (the SDK's enum, in its order).
ARM_STATUS_VALUES = (CONNECTED, DISCONNECTED, ERROR, AWAITING, EXPIRED)


@dataclass(frozen=True)
class StatusWord:
    """How the portal speaks of one status — the ONE vocabulary of list, detail, filters, counts, CSV, timeline
    and choices (the ARM API speaks ``value``).

    ``name`` is the word wherever a word is needed (filter menu, counts strip, activity log, timeline, choices);
    ``badge`` is the text of the status badge and of the CSV's Status column: Azure shows no status before the first
    heartbeat, and says "Offline" for Disconnected; ``css`` is the badge's class (colour is never the only signal).
    """

    value: str
    name: str
    badge: str
    css: str


# In the order the portal lists them (filter menu, counts strip).
VOCABULARY = (
    StatusWord(CONNECTED, "Connected", "Connected", "status-connected"),
    StatusWord(DISCONNECTED, "Offline", "Offline", "status-disconnected"),
    StatusWord(EXPIRED, "Expired", "Expired", "status-expired"),
    StatusWord(AWAITING, "Not connected yet", "", "status-awaitingconnection"),
)
WORDS = {word.value: word for word in VOCABULARY}
UNKNOWN_CSS = "status-unknown"
# Both the ARM value and the portal's word name a status in a query (``?status=Offline`` = ``Disconnected``).
_BY_TEXT = {word.value.casefold(): word.value for word in VOCABULARY} | {
    word.name.casefold(): word.value for word in VOCABULARY
}


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
    """The badge text of a status ("" before the first heartbeat); an unknown value as it is."""
    word = WORDS.get(status)
    return word.badge if word else status


def status_name(status: str) -> str:
    """The portal's word for a status ("Not connected yet" before the first heartbeat); an unknown value as it is."""
    word = WORDS.get(status)
    return word.name if word else status


def status_css(status: str) -> str:
    word = WORDS.get(status)
    return word.css if word else UNKNOWN_CSS


def parse_status(text: str) -> str | None:
    """The ARM value a query names, by value or by the portal's word, in any case; ``None`` if it names none."""
    return _BY_TEXT.get(text.strip().casefold())
