"""Issue 15: a second beat started by mistake does not double the status sweep. One worker, two beats (each with
its own schedule file, as on two hosts), the sweep every 2 s for 24 s: the sweep task arrives about twice per
interval, and runs about once per interval (the slot of arcportal/locks.py), the other arrivals skipped.

With REDIS_URL and DATABASE_URL (CI's PostgreSQL pass) on Redis and a database of its own; else on the embedded
broker and SQLite (the file slot).
"""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.integration.conftest import BEAT, WORKER, wait_until

pytestmark = pytest.mark.integration

SWEEP_SECONDS = 2
WINDOW_SECONDS = 24
TASK = "machines.tasks.machine_status_sweep_task"


def test_two_beats_run_the_sweep_once_per_interval(make_installation, database_url, redis_cleanup):
    overrides = {"ARC_STATUS_SWEEP_SECONDS": str(SWEEP_SECONDS), "ARC_BEAT_LIVENESS_SECONDS": "30"}
    if os.environ.get("REDIS_URL"):
        overrides["REDIS_URL"] = os.environ["REDIS_URL"]
    if database_url:
        overrides["DATABASE_URL"] = database_url
    installation = make_installation(**overrides)
    redis_cleanup(installation)
    installation.manage("migrate", "--no-input")
    installation.start("worker", WORKER)
    try:
        wait_until(lambda: "ready" in installation.log("worker"), timeout=60, message="the worker did not start")
    except AssertionError:
        raise AssertionError(installation.logs()) from None
    installation.start("beat-1", BEAT)
    installation.start("beat-2", [*BEAT, "--schedule", str(installation.var_dir / "second-beat-schedule")])
    time.sleep(WINDOW_SECONDS)
    installation.stop_all()

    log = installation.log("worker")
    received = len(re.findall(rf"Task {re.escape(TASK)}\[[^\]]+\] received", log))
    succeeded = re.findall(rf"Task {re.escape(TASK)}\[[^\]]+\] succeeded in [0-9.e-]+s: (.*)", log)
    swept = [result for result in succeeded if result.strip() != "None"]
    skipped = log.count("machine-status-sweep skipped")
    due = WINDOW_SECONDS / SWEEP_SECONDS
    summary = f"received {received}, ran {len(swept)}, skipped {skipped}, due about {due:.0f} per beat"
    # Both beats sent it: clearly more arrivals than one beat's share …
    assert received >= 1.5 * due * 0.7, summary + "\n" + installation.logs()
    # … and it ran about once per interval, never about twice (without the slot: ~2 × due).
    assert 0.4 * due <= len(swept) <= due + 2, summary + "\n" + installation.logs()
    assert skipped >= received - len(swept) - 2 and skipped >= 0.3 * due, summary
