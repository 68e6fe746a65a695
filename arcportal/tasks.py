"""Celery tasks of the core: beat liveness (STYLE.md §8: a task body is one call and a log line)."""

import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

BEAT_LIVENESS_KEY = "arcportal:beat-liveness"


def beat_liveness_record() -> str:
    """Leave the current time where ``/healthz`` reads it."""
    stamp = timezone.now().isoformat()
    cache.set(BEAT_LIVENESS_KEY, stamp, timeout=None)
    return stamp


@shared_task
def beat_liveness_task() -> str:
    """Scheduled by beat, run by a worker: the timestamp it leaves proves both are alive (/healthz reads it)."""
    stamp = beat_liveness_record()
    logger.info("beat liveness %s", stamp)
    return stamp
