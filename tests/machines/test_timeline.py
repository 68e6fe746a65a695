"""The 7-day status picture. Pure: no database, no Django."""

import itertools
from datetime import UTC, datetime, timedelta

from machines.status import AWAITING, CONNECTED, DISCONNECTED, EXPIRED, StatusThresholds
from machines.timeline import Band, legend, status_bands, timeline_svg

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
T = StatusThresholds(offline_after=timedelta(minutes=25), expired_after=timedelta(days=45))
WEEK_AGO = NOW - timedelta(days=7)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def statuses(bands: list[Band]) -> list[str]:
    return [band.status for band in bands]


def test_fresh_heartbeat_and_no_events_is_connected_all_week():
    bands = status_bands(events=[], last_heartbeat_at=ago(seconds=30), now=NOW, thresholds=T)
    assert bands == [Band(WEEK_AGO, NOW, CONNECTED)]


def test_never_heartbeated_machine_has_no_status():
    bands = status_bands(events=[], last_heartbeat_at=None, now=NOW, thresholds=T)
    assert bands == [Band(WEEK_AGO, NOW, AWAITING)]


def test_silence_turns_offline_exactly_offline_after_the_last_heartbeat():
    last = ago(hours=2)
    bands = status_bands(events=[], last_heartbeat_at=last, now=NOW, thresholds=T)
    assert bands == [Band(WEEK_AGO, last + T.offline_after, CONNECTED), Band(last + T.offline_after, NOW, DISCONNECTED)]


def test_recorded_outage_then_reconnect_gives_three_bands():
    went_offline, came_back = ago(days=3), ago(days=2)
    events = [(came_back, DISCONNECTED, CONNECTED), (went_offline, CONNECTED, DISCONNECTED)]  # any order
    bands = status_bands(events=events, last_heartbeat_at=ago(minutes=1), now=NOW, thresholds=T)
    assert bands == [
        Band(WEEK_AGO, went_offline, CONNECTED),
        Band(went_offline, came_back, DISCONNECTED),
        Band(came_back, NOW, CONNECTED),
    ]


def test_derived_tail_wins_over_a_sweep_that_has_not_run():
    # The sweep recorded nothing after the heartbeat stopped; the picture still shows Offline, like the badge.
    connected_at, last = ago(days=5), ago(days=1)
    events = [(connected_at, AWAITING, CONNECTED)]
    bands = status_bands(events=events, last_heartbeat_at=last, now=NOW, thresholds=T)
    assert statuses(bands) == [AWAITING, CONNECTED, DISCONNECTED]
    assert bands[0] == Band(WEEK_AGO, connected_at, AWAITING)
    assert bands[2].start == last + T.offline_after


def test_events_after_the_last_heartbeat_are_replaced_by_the_rule():
    last = ago(hours=3)
    stale_event = (ago(hours=1), CONNECTED, EXPIRED)  # contradicts the rule: ignored
    bands = status_bands(events=[stale_event], last_heartbeat_at=last, now=NOW, thresholds=T)
    assert statuses(bands) == [CONNECTED, DISCONNECTED]


def test_expired_band_after_expired_after():
    short = StatusThresholds(offline_after=timedelta(minutes=25), expired_after=timedelta(days=2))
    last = ago(days=4)
    bands = status_bands(events=[], last_heartbeat_at=last, now=NOW, thresholds=short)
    assert statuses(bands) == [CONNECTED, DISCONNECTED, EXPIRED]
    assert bands[-1] == Band(last + short.expired_after, NOW, EXPIRED)


def test_window_starts_at_creation_for_a_new_machine():
    created = ago(hours=6)
    bands = status_bands(events=[], last_heartbeat_at=None, now=NOW, thresholds=T, created_at=created)
    assert bands == [Band(created, NOW, AWAITING)]


def test_event_before_the_window_sets_the_starting_status():
    events = [(ago(days=10), CONNECTED, DISCONNECTED)]
    bands = status_bands(events=events, last_heartbeat_at=ago(days=10, minutes=30), now=NOW, thresholds=T)
    assert bands == [Band(WEEK_AGO, NOW, DISCONNECTED)]


def test_bands_are_contiguous_and_cover_the_window():
    events = [(ago(days=6), CONNECTED, DISCONNECTED), (ago(days=4), DISCONNECTED, CONNECTED)]
    bands = status_bands(events=events, last_heartbeat_at=ago(hours=5), now=NOW, thresholds=T)
    assert bands[0].start == WEEK_AGO and bands[-1].end == NOW
    for left, right in itertools.pairwise(bands):
        assert left.end == right.start and left.status != right.status


def test_svg_has_one_rect_per_band_with_labels_and_escapes_text():
    bands = [Band(WEEK_AGO, ago(days=3), CONNECTED), Band(ago(days=3), NOW, DISCONNECTED)]
    svg = timeline_svg(bands=bands, now=NOW)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="band ') == 2
    assert "Connected: " in svg and "Offline: " in svg
    assert 'role="img"' in svg and "<title>Status over the last 7 days</title>" in svg
    # The first band spans 4 of 7 days of a 700-wide picture.
    assert 'x="0.0" y="4" width="400.0"' in svg
    assert "now</text>" in svg


def test_svg_escapes_unknown_status_names():
    svg = timeline_svg(bands=[Band(WEEK_AGO, NOW, "<script>")], now=NOW)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_legend_lists_only_statuses_shown_in_a_fixed_order():
    bands = [Band(WEEK_AGO, ago(days=1), DISCONNECTED), Band(ago(days=1), NOW, CONNECTED)]
    assert [label for _, label, _ in legend(bands)] == ["Connected", "Offline"]


def test_legend_mentions_the_time_before_the_machine_existed():
    bands = [Band(ago(days=2), NOW, CONNECTED)]
    assert [label for _, label, _ in legend(bands, now=NOW)] == ["Connected", "Not registered yet"]
    assert [label for _, label, _ in legend([Band(WEEK_AGO, NOW, CONNECTED)], now=NOW)] == ["Connected"]
