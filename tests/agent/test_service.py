"""The agent service's timing: heartbeat interval with jitter, exponential backoff on failure."""

from azcmagent.service import BeatResult, next_delay


def _result(ok: bool, interval: int = 300) -> BeatResult:
    return BeatResult(ok=ok, status_code=200 if ok else 503, stop=False, next_seconds=interval, message="")


def test_after_a_success_the_next_beat_is_within_the_interval_with_jitter():
    assert next_delay(_result(True), failures=0, uniform=lambda a, b: b) == 300
    assert next_delay(_result(True), failures=0, uniform=lambda a, b: a) == 270


def test_failures_back_off_exponentially_up_to_the_interval():
    delays = [next_delay(_result(False), failures=n, uniform=lambda a, b: b) for n in range(1, 10)]
    assert delays[:5] == [5, 10, 20, 40, 80]
    assert max(delays) == 300 and delays == sorted(delays)


def test_backoff_jitter_only_shortens():
    assert next_delay(_result(False), failures=3, uniform=lambda a, b: a) == 16
