"""Celery tasks: load ids, call one service, log (STYLE.md §8)."""

import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from machines.services import machine_status_sweep

logger = logging.getLogger(__name__)

BEAT_LIVENESS_KEY = "arcportal:beat-liveness"


@shared_task
def machine_status_sweep_task() -> dict:
    result = machine_status_sweep(now=timezone.now())
    return result.transitions


@shared_task
def beat_liveness_task() -> str:
    """Scheduled by beat, run by a worker: the timestamp it leaves proves both are alive (/healthz reads it)."""
    stamp = timezone.now().isoformat()
    cache.set(BEAT_LIVENESS_KEY, stamp, timeout=None)
    logger.info("beat liveness %s", stamp)
    return stamp
