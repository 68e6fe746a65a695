"""The status timeline of a machine's Overview: Connected / Offline / Expired bands over the last days, as SVG.

Pure: no Django import. Time comes in as ``now``. The recorded transitions (``MachineStatusEvent``) give the
history up to the last heartbeat; from the last heartbeat on, the same rule as every badge (``status.py``) decides,
so the picture agrees with the badge even if the status sweep has not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from machines.status import AWAITING, CONNECTED, DISCONNECTED, EXPIRED, StatusThresholds, status_name

DEFAULT_DAYS = 7

# Fill colours follow the badges in portal.css; every band also carries its status's word
# (machines.status.VOCABULARY) in a <title> for screen readers.
BAND_COLOURS = {CONNECTED: "#107c10", DISCONNECTED: "#a4262c", EXPIRED: "#605e5c", AWAITING: "#e1dfdd"}


@dataclass(frozen=True)
class Band:
    start: datetime
    end: datetime
    status: str

    @property
    def label(self) -> str:
        return status_name(self.status)


def status_bands(
    *,
    events: Iterable[tuple[datetime, str, str]],
    last_heartbeat_at: datetime | None,
    now: datetime,
    thresholds: StatusThresholds,
    created_at: datetime | None = None,
    days: int = DEFAULT_DAYS,
) -> list[Band]:
    """Contiguous bands covering ``[max(now - days, created_at), now]``; neighbours never share a status.

    ``events`` are ``(at, from_status, to_status)`` transitions in any order. Transitions at or after the last
    heartbeat are replaced by what the rule says: Connected until ``last_heartbeat_at + offline_after``, then
    Offline, then Expired after ``expired_after``. Before the first recorded transition the machine was in its
    ``from_status``; with nothing recorded, a machine with heartbeats counts as Connected, one without as no status.
    """
    start = now - timedelta(days=days)
    if created_at is not None and created_at > start:
        start = created_at
    if start >= now:
        return []

    recorded = sorted(events, key=lambda event: event[0])
    # Before the first recorded transition the machine was in that transition's "from" status.
    if recorded:
        current = recorded[0][1]
    else:
        current = CONNECTED if last_heartbeat_at is not None else AWAITING
    changes = [(at, to_status) for at, _, to_status in recorded]
    if last_heartbeat_at is not None:
        changes = [change for change in changes if change[0] < last_heartbeat_at]
        changes += [
            (last_heartbeat_at, CONNECTED),
            (last_heartbeat_at + thresholds.offline_after, DISCONNECTED),
            (last_heartbeat_at + thresholds.expired_after, EXPIRED),
        ]
    for at, status in changes:
        if at <= start:
            current = status
    bands: list[Band] = []
    cursor = start
    for at, status in changes:
        if at <= start:
            continue
        if at >= now:
            break
        if status != current:
            bands.append(Band(cursor, at, current))
            cursor, current = at, status
    bands.append(Band(cursor, now, current))
    return [band for band in bands if band.end > band.start]


def timeline_svg(
    *, bands: list[Band], now: datetime, days: int = DEFAULT_DAYS, width: int = 700, height: int = 64
) -> str:
    """An accessible SVG: one rectangle per band, day ticks under it, and a legend with text, not colour alone."""
    window_start = now - timedelta(days=days)
    total = (now - window_start).total_seconds()
    bar_top, bar_height = 4, 24

    def x_of(moment: datetime) -> float:
        return round(max(0.0, min(1.0, (moment - window_start).total_seconds() / total)) * width, 2)

    summary = "; ".join(
        f"{band.label} from {band.start:%Y-%m-%d %H:%M} to {band.end:%Y-%m-%d %H:%M} UTC" for band in bands
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Status over the last {days} days" class="timeline-svg">',
        f"<title>Status over the last {days} days</title>",
        f"<desc>{escape(summary or 'No data')}</desc>",
        f'<rect x="0" y="{bar_top}" width="{width}" height="{bar_height}" fill="{NO_DATA_COLOUR}"/>',
    ]
    for band in bands:
        x0, x1 = x_of(band.start), x_of(band.end)
        parts.append(
            f'<rect class="band band-{escape(band.status.lower())}" x="{x0}" y="{bar_top}" '
            f'width="{max(round(x1 - x0, 2), 0.5)}" height="{bar_height}" '
            f'fill="{BAND_COLOURS.get(band.status, "#e1dfdd")}">'
            f"<title>{escape(band.label)}: {band.start:%Y-%m-%d %H:%M} – {band.end:%Y-%m-%d %H:%M} UTC</title></rect>"
        )
    for day in range(days + 1):
        tick = window_start + timedelta(days=day)
        x = x_of(tick)
        anchor = "start" if day == 0 else "end" if day == days else "middle"
        label = "now" if day == days else f"{tick:%b %d}"
        parts.append(
            f'<line x1="{x}" y1="{bar_top + bar_height}" x2="{x}" y2="{bar_top + bar_height + 4}" stroke="#8a8886"/>'
        )
        parts.append(
            f'<text x="{x}" y="{bar_top + bar_height + 16}" font-size="10" fill="#605e5c" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


NO_DATA_COLOUR = "#f3f2f1"


def legend(bands: list[Band], *, now: datetime | None = None, days: int = DEFAULT_DAYS) -> list[tuple[str, str, str]]:
    """``(status, label, colour)`` for each status the picture shows, in a fixed order; with ``now``, also the
    empty background when the bands start after the window does (the machine did not exist yet)."""
    shown = {band.status for band in bands}
    items = [(s, status_name(s), BAND_COLOURS[s]) for s in (CONNECTED, DISCONNECTED, EXPIRED, AWAITING) if s in shown]
    if now is not None and (not bands or bands[0].start > now - timedelta(days=days)):
        items.append(("", "Not registered yet", NO_DATA_COLOUR))
    return items
