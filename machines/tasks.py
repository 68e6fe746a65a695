"""Celery tasks: load ids, call one service, log (STYLE.md §8)."""

import logging

from celery import shared_task
from django.utils import timezone

from arcportal.locks import once_per_period, sweep_period
from arcportal.tasks import beat_liveness_record
from machines.fleet_counts import fleet_counts_compact
from machines.heartbeats import heartbeat_flush, heartbeat_nonces_purge
from machines.services import async_operations_housekeeping, machine_status_sweep
from machines.webhooks import WebhookDeliveryFailed, webhook_deliveries_requeue_stale, webhook_delivery_send

logger = logging.getLogger(__name__)

WEBHOOK_MAX_RETRIES = 6


@shared_task
@once_per_period("machine-status-sweep", sweep_period)  # a second beat started by mistake does not double it
def machine_status_sweep_task() -> dict:
    # Heartbeats waiting in Redis first, so the sweep never marks Offline a machine whose heartbeat is pending. A
    # flush that fails (the database refused something the isolation could not pin down) never skips the sweep:
    # its batch stays in Redis for the next flush, and a machine it held is at worst marked Offline and back.
    try:
        heartbeat_flush()
    except Exception:
        logger.exception("heartbeat flush before the status sweep failed; sweeping anyway")
    now = timezone.now()
    result = machine_status_sweep(now=now)
    heartbeat_nonces_purge(now=now)
    # The sweep wrote most of the counts summary's deltas (one per transition): fold them while nobody else does.
    fleet_counts_compact()
    return result.transitions


@shared_task
def machine_heartbeat_flush_task() -> int:
    """Beat, every ``ARC_HEARTBEAT_FLUSH_SECONDS``: write the heartbeats buffered in Redis (one bulk UPDATE)."""
    return heartbeat_flush()


@shared_task
def beat_liveness_task() -> str:
    """The name beat liveness had before it moved to ``arcportal.tasks`` (issue 11): a message queued under it by an
    older beat still runs. Beat now schedules ``arcportal.tasks.beat_liveness_task``."""
    return beat_liveness_record()


@shared_task(
    autoretry_for=(WebhookDeliveryFailed,),
    max_retries=WEBHOOK_MAX_RETRIES,
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    acks_late=True,
)
def webhook_deliver_task(delivery_id: int) -> int | None:
    """Post one webhook delivery; a non-2xx answer or a network error retries after ~2, 4, 8 … s (≤ 10 min)."""
    status_code = webhook_delivery_send(delivery_id=delivery_id)
    logger.info("webhook delivery %s answered %s", delivery_id, status_code)
    return status_code


@shared_task
def webhook_requeue_stale_task() -> int:
    """Housekeeping (beat): deliveries written but never attempted are enqueued again."""
    count = webhook_deliveries_requeue_stale(now=timezone.now())
    if count:
        logger.warning("re-enqueued %s stale webhook deliveries", count)
    return count


@shared_task
def async_operation_housekeeping_task() -> list[int]:
    """Beat, hourly: end overdue extension / run-command operations, delete old ended ones."""
    ended, deleted = async_operations_housekeeping()
    return [ended, deleted]
