"""The status rule at every boundary. Pure: no database."""

from datetime import UTC, datetime, timedelta

import pytest

from machines import status
from machines.status import StatusThresholds, derive_status, transition_time

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
T = StatusThresholds()


def at(**delta) -> datetime:
    return NOW - timedelta(**delta)


@pytest.mark.parametrize(
    ("last_heartbeat_at", "expected"),
    [
        (None, status.AWAITING),
        (NOW, status.CONNECTED),
        (at(minutes=25), status.CONNECTED),
        (at(minutes=25, seconds=1), status.DISCONNECTED),
        (at(days=45), status.DISCONNECTED),
        (at(days=45, seconds=1), status.EXPIRED),
        (at(days=400), status.EXPIRED),
        (NOW + timedelta(minutes=3), status.CONNECTED),  # agent clock slightly ahead
    ],
)
def test_derive_status_boundaries(last_heartbeat_at, expected):
    assert derive_status(last_heartbeat_at=last_heartbeat_at, now=NOW, thresholds=T) == expected


def test_portal_labels_match_the_azure_portal():
    assert [status.portal_label(s) for s in status.ALL_STATUSES] == ["", "Connected", "Offline", "Expired"]


def test_thresholds_are_validated():
    with pytest.raises(ValueError):
        StatusThresholds(offline_after=timedelta(0))
    with pytest.raises(ValueError):
        StatusThresholds(offline_after=timedelta(days=2), expired_after=timedelta(days=1))


def test_transition_time_is_the_exact_moment_not_the_sweep_time():
    beat = at(hours=1)
    assert transition_time(last_heartbeat_at=beat, status=status.DISCONNECTED, thresholds=T) == beat + T.offline_after
    assert transition_time(last_heartbeat_at=beat, status=status.EXPIRED, thresholds=T) == beat + T.expired_after
    assert transition_time(last_heartbeat_at=beat, status=status.CONNECTED, thresholds=T) == beat
    assert transition_time(last_heartbeat_at=None, status=status.AWAITING, thresholds=T) is None


def test_short_thresholds_for_demos_and_tests():
    short = StatusThresholds(offline_after=timedelta(seconds=6), expired_after=timedelta(seconds=60))
    assert derive_status(last_heartbeat_at=at(seconds=6), now=NOW, thresholds=short) == status.CONNECTED
    assert derive_status(last_heartbeat_at=at(seconds=7), now=NOW, thresholds=short) == status.DISCONNECTED
    assert derive_status(last_heartbeat_at=at(seconds=61), now=NOW, thresholds=short) == status.EXPIRED
