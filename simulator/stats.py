"""What a fleet simulation counted: heartbeats per outcome, round trips, onboarding failures, and the summary lines
``manage.py simulate_fleet`` and ``bench/simulator.py`` print. No Django."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from simulator.config import SimulatedMachine


@dataclass
class HeartbeatCounters:
    """The heartbeats sent in one part of a run (``FleetStats.window``): each counted where it was sent."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # HTTP status → count
    errors: Counter = field(default_factory=Counter)  # no answer: exception class → count
    round_trips: list[float] = field(default_factory=list)  # seconds on the wire, of every answered heartbeat
    # seconds each heartbeat waited in the simulator for one of the ``concurrency`` request slots before it was sent
    # (the fleet's own queue: a real agent would already have been waiting on the portal)
    slot_waits: list[float] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def lost(self) -> int:
        """Sent but never answered (network error, timeout, cut off at the end)."""
        return self.sent - self.accepted - self.rejected_total

    def round_trip_ms(self) -> dict[str, float]:
        """p50/p95/p99/max of the answered heartbeats' round trips, in milliseconds (empty without any)."""
        return distribution_ms(self.round_trips)

    def slot_wait_ms(self) -> dict[str, float]:
        return distribution_ms(self.slot_waits)


def distribution_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations in seconds, in milliseconds (empty without any)."""
    ms = sorted(value * 1000 for value in seconds)
    if not ms:
        return {}
    return {"p50": statistics.median(ms), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": ms[-1]}


def percentile(samples: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``q`` % of the samples at or below it."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class FleetStats:
    machines: list[SimulatedMachine]
    started_at: float = 0.0  # time.time()
    finished_at: float = 0.0
    onboarding_seconds: float = 0.0  # from the start until the last machine finished onboarding
    # With ``onboarding_timeout``: when the timed window started (time.time(); 0 if it never did), and its heartbeats.
    window_started_at: float = 0.0
    window: HeartbeatCounters | None = None
    heartbeats_sent: int = 0
    heartbeats_accepted: int = 0
    heartbeats_rejected: Counter = field(default_factory=Counter)  # HTTP status → count
    heartbeat_errors: Counter = field(default_factory=Counter)  # no answer: exception class → count
    # (seconds since the start when it was sent, round trip in seconds) of every answered heartbeat
    heartbeat_timings: list[tuple[float, float]] = field(default_factory=list)
    onboarding_failures: Counter = field(default_factory=Counter)  # step + status/code → count
    not_started: int = 0  # machines the deadline (or a stop) came before
    interrupted: bool = False

    @property
    def onboarded(self) -> int:
        return sum(1 for m in self.machines if m.onboarded)

    @property
    def rejected(self) -> int:
        return sum(self.heartbeats_rejected.values())

    @property
    def lost(self) -> int:
        """Heartbeats sent that got no answer at all (network error, timeout, cut off at the end)."""
        return self.heartbeats_sent - self.heartbeats_accepted - self.rejected

    @property
    def window_seconds(self) -> float:
        return max(0.0, self.finished_at - self.window_started_at) if self.window_started_at else 0.0

    def summary_lines(self) -> list[str]:
        elapsed = max(0.0, self.finished_at - self.started_at)
        online = sum(1 for m in self.machines if m.onboarded and m.stays_online)
        lines = [
            f"machines: {len(self.machines)} requested, {self.onboarded} onboarded "
            f"({online} heartbeating, {self.onboarded - online} stopped after onboarding), "
            f"{sum(self.onboarding_failures.values())} onboarding failures, {self.not_started} not started",
            f"onboarding took {self.onboarding_seconds:.1f} s; ran {elapsed:.1f} s"
            + (" (interrupted)" if self.interrupted else ""),
            f"heartbeats: {self.heartbeats_sent} sent, {self.heartbeats_accepted} accepted, "
            f"{self.rejected} rejected, {self.lost} lost",
        ]
        if self.window is not None and not self.window_started_at:
            lines.append("timed window: did not start (the fleet was stopped while onboarding)")
        elif self.window is not None:
            window = self.window
            lines.append(
                f"timed window ({self.window_seconds:.1f} s after the fleet had onboarded): {window.sent} sent, "
                f"{window.accepted} accepted, {window.rejected_total} rejected, {window.lost} lost"
            )
            if window.round_trips:
                lines.append(
                    "timed window round trips: "
                    + ", ".join(f"{name} {ms:.1f} ms" for name, ms in window.round_trip_ms().items())
                    + "; waits for a request slot before that: "
                    + ", ".join(f"{name} {ms:.1f} ms" for name, ms in window.slot_wait_ms().items())
                )
        if self.heartbeats_rejected:
            lines.append("rejected by status: " + _counts(self.heartbeats_rejected))
        if self.heartbeat_errors:
            lines.append("heartbeats without an answer: " + _counts(self.heartbeat_errors))
        if self.onboarding_failures:
            lines.append("onboarding failures: " + _counts(self.onboarding_failures))
        return lines


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counter.items(), key=lambda kv: str(kv[0])))


# --- Pure helpers ---------------------------------------------------------------------------------------------
