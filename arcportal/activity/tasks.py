"""Celery tasks of the activity log: call one service, log (STYLE.md §8)."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from arcportal.activity.services import activity_purge

logger = logging.getLogger(__name__)


@shared_task
def activity_purge_task() -> int:
    """Beat, hourly: events older than ``ARC_ACTIVITY_LOG_RETENTION_DAYS`` are deleted."""
    deleted = activity_purge(now=timezone.now(), retention_days=settings.ARC_ACTIVITY_LOG_RETENTION_DAYS)
    if deleted:
        logger.info("purged %d activity events", deleted)
    return deleted
