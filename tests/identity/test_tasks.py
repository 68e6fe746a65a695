"""The hourly purge removes only device codes that expired more than a day ago, and beat schedules it."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from identity.models import DeviceCode
from onboarding.tasks import device_code_purge_expired_task

pytestmark = pytest.mark.django_db


def _code(n: int, expires_at):
    return DeviceCode.objects.create(device_code_hash=f"{n:064d}", user_code=f"CODE{n:04d}", expires_at=expires_at)


def test_purge_deletes_only_codes_expired_over_a_day_ago():
    now = timezone.now()
    old = _code(1, now - timedelta(days=2))
    recent = _code(2, now - timedelta(hours=2))
    live = _code(3, now + timedelta(minutes=10))
    assert device_code_purge_expired_task() == 1
    remaining = set(DeviceCode.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk, live.pk}
    assert old.pk not in remaining


def test_beat_schedules_the_purge():
    entry = settings.CELERY_BEAT_SCHEDULE["device-code-purge-expired"]
    assert entry["task"] == "identity.tasks.device_code_purge_expired_task"
