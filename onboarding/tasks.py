"""Celery tasks of the onboarding app: call one service, log (STYLE.md §8)."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from identity.device_codes import device_code_purge_expired
from onboarding.services import onboarding_failures_purge

logger = logging.getLogger(__name__)


@shared_task
def onboarding_failure_purge_task() -> int:
    """Beat, hourly: failure reports past ``ARC_ONBOARDING_LOG_RETENTION_DAYS``, and beyond the newest
    ``ARC_ONBOARDING_LOG_MAX_ROWS``, are deleted."""
    deleted = onboarding_failures_purge(
        now=timezone.now(),
        retention_days=settings.ARC_ONBOARDING_LOG_RETENTION_DAYS,
        max_rows=settings.ARC_ONBOARDING_LOG_MAX_ROWS,
    )
    if deleted:
        logger.info("purged %d onboarding failure reports", deleted)
    return deleted


@shared_task
def device_code_purge_expired_task() -> int:
    """The name this purge had before it moved to ``identity.tasks`` (issue 11): a message queued under it by an
    older beat still runs. Beat now schedules ``identity.tasks.device_code_purge_expired_task``."""
    return device_code_purge_expired()
