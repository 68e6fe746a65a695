"""Celery tasks of the identity app: call one service, log (STYLE.md §8)."""

import logging

from celery import shared_task

from identity.device_codes import device_code_purge_expired

logger = logging.getLogger(__name__)


@shared_task
def device_code_purge_expired_task() -> int:
    """Beat, hourly: delete device codes that expired more than a day ago (approved, denied or never used)."""
    deleted = device_code_purge_expired()
    if deleted:
        logger.info("purged %d expired device codes", deleted)
    return deleted
