"""``arcportal/locks.py``: a slot per period, in Redis (REDIS_URL) or in a file under the var dir, taken only by runs
a worker executes; Redis not answering fails open. The two-beats case with real processes is
tests/integration/test_sweep_lock.py."""

from __future__ import annotations

import time
import uuid

import pytest

from arcportal import locks


@pytest.fixture(params=["file", "configured"])
def backend(request, settings, tmp_path):
    """The file slot always; and the run's own configuration: Redis in the PostgreSQL + Redis pass (REDIS_URL),
    the file again on the embedded defaults."""
    import os

    settings.VAR_DIR = tmp_path
    settings.REDIS_URL = os.environ.get("REDIS_URL", "") if request.param == "configured" else ""
    return "redis" if settings.REDIS_URL else "file"


def test_a_slot_is_taken_once_per_period(backend):
    name = f"test-{uuid.uuid4().hex[:8]}"
    assert locks.take_slot(name, 0.6) is True
    assert locks.take_slot(name, 0.6) is False
    assert locks.take_slot(f"{name}-other", 0.6) is True  # slots are per name
    time.sleep(0.8)
    assert locks.take_slot(name, 0.6) is True


def test_the_file_slot_survives_a_clock_moved_back(settings, tmp_path, monkeypatch):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    assert locks.take_slot("clock", 60) is True
    real = time.time()
    monkeypatch.setattr(locks.time, "time", lambda: real - 3600)  # an hour back: the stored stamp is far ahead
    assert locks.take_slot("clock", 60) is True


def test_redis_not_answering_runs_anyway(redis_down, settings):
    assert locks.take_slot("down", 60) is True
    assert locks.take_slot("down", 60) is True


def test_the_decorator_skips_worker_runs_inside_the_period_and_never_direct_calls(backend, monkeypatch):
    calls = []
    name = f"task-{uuid.uuid4().hex[:8]}"
    task = locks.once_per_period(name, lambda: 0.6)(lambda: calls.append(1) or "ran")
    assert [task(), task()] == ["ran", "ran"]  # direct calls: deliberate, never skipped
    monkeypatch.setattr(locks, "_run_by_a_worker", lambda: True)
    assert [task(), task()] == ["ran", None]
    time.sleep(0.7)  # 0.9 × the period has passed
    assert task() == "ran"
    assert len(calls) == 4


def test_only_a_worker_run_counts_as_one():
    from machines.tasks import machine_status_sweep_task

    assert locks._run_by_a_worker() is False  # no task at all
    machine_status_sweep_task.push_request(called_directly=False, is_eager=False)
    try:
        from celery.app.task import _task_stack

        _task_stack.push(machine_status_sweep_task)
        try:
            assert locks._run_by_a_worker() is True
        finally:
            _task_stack.pop()
    finally:
        machine_status_sweep_task.pop_request()
