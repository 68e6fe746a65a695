"""Celery task names after the move (issue 11): beat names registered tasks, tasks queued under their old names
(by a beat that ran before the upgrade) still run, and services enqueue by a name that is registered."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

from arcportal.celery import app
from arcportal.tasks import BEAT_LIVENESS_KEY

OLD_NAMES = ["machines.tasks.beat_liveness_task", "onboarding.tasks.device_code_purge_expired_task"]


@pytest.fixture(autouse=True, scope="module")
def worker_tasks():
    """What a worker does when it starts: import every installed app's tasks module (Celery's autodiscovery)."""
    app.loader.import_default_modules()


def test_every_beat_entry_names_a_registered_task():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"arcportal.tasks.beat_liveness_task", "identity.tasks.device_code_purge_expired_task"} <= names
    assert not names & set(OLD_NAMES)
    assert names <= set(app.tasks)


@pytest.mark.django_db
def test_tasks_queued_under_their_old_names_still_run():
    cache.delete(BEAT_LIVENESS_KEY)
    stamp = app.tasks["machines.tasks.beat_liveness_task"].apply().get()
    assert cache.get(BEAT_LIVENESS_KEY) == stamp
    assert app.tasks["onboarding.tasks.device_code_purge_expired_task"].apply().get() == 0


def test_webhook_deliveries_are_enqueued_under_a_registered_name():
    from machines.webhooks import DELIVER_TASK

    assert app.tasks[DELIVER_TASK].name == DELIVER_TASK == "machines.tasks.webhook_deliver_task"
