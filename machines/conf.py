"""Typed access to the status settings (DESIGN.md §3)."""

from datetime import timedelta

from django.conf import settings

from machines.status import StatusThresholds


def status_thresholds() -> StatusThresholds:
    return StatusThresholds(
        offline_after=timedelta(seconds=settings.ARC_OFFLINE_AFTER_SECONDS),
        expired_after=timedelta(days=settings.ARC_EXPIRED_AFTER_DAYS),
    )
