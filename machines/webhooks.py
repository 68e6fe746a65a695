"""Webhooks: HTTP notifications of machine status transitions (docs/status-engine.md).

A webhook is scoped to a subscription or to one resource group. Every transition (sweep or heartbeat) inside the
scope becomes one ``WebhookDelivery`` row, written in the same transaction as the transition itself; the
delivery task is enqueued only once that transaction commits. The worker posts the JSON payload signed with
HMAC-SHA256 over ``"<timestamp>.<body>"`` and records status code, attempts and the last error (the receiver's
status line only: its body is never stored or shown).

Receivers must have public addresses (``machines.egress``): checked when a webhook is created and again before each
delivery, which connects to the address it checked; ``ARC_WEBHOOK_ALLOWED_HOSTS`` names internal receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from arcportal.arm import ids
from arcportal.celery import app as celery_app
from arcportal.crypto import decrypt_text, encrypt_text
from arcportal.exceptions import Invalid, NotFound
from machines import egress
from machines.models import Machine, ResourceGroup, Subscription, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

EVENT_TYPE = "Microsoft.HybridCompute.MachineStatusChanged"
SIGNATURE_HEADER = "X-ArcPortal-Signature"
TIMESTAMP_HEADER = "X-ArcPortal-Timestamp"
DELIVERY_TIMEOUT_SECONDS = 10.0
MAX_ERROR_LENGTH = 2000
# Tests swap in an ``httpx.MockTransport``; None means real network I/O.
DELIVERY_TRANSPORT: httpx.BaseTransport | None = None
# The Celery name of the delivery task (machines/tasks.py).
DELIVER_TASK = "machines.tasks.webhook_deliver_task"
# A delivery never attempted this long after it was written is enqueued again (webhook_deliveries_requeue_stale).
STALE_AFTER = timedelta(minutes=5)


class WebhookDeliveryFailed(Exception):
    """The receiver did not answer 2xx (or could not be reached); the task retries with backoff."""


# --- Management ----------------------------------------------------------------------------------------------


def webhook_validate_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("A webhook URL must be an absolute http:// or https:// URL.", target="url")
    if parts.username or parts.password:
        raise Invalid("A webhook URL must not carry credentials; use the signing secret.", target="url")
    if len(url) > 2000:
        raise Invalid("A webhook URL is at most 2000 characters.", target="url")
    try:
        egress.resolve_target(url, allow=settings.ARC_WEBHOOK_ALLOWED_HOSTS)
    except egress.AddressNotAllowed as exc:
        raise Invalid(str(exc), target="url") from exc
    return url


@dataclass(frozen=True)
class WebhookCreated:
    webhook: Webhook
    secret: str  # plaintext, returned exactly once


@transaction.atomic
def webhook_create(
    *, subscription: Subscription, url: str, resource_group: ResourceGroup | None = None, created_by: str = ""
) -> WebhookCreated:
    url = webhook_validate_url(url)
    if resource_group is not None and resource_group.subscription_id != subscription.pk:
        raise Invalid("The resource group is not in that subscription.", target="resource_group")
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook.objects.create(
        subscription=subscription,
        resource_group=resource_group,
        url=url,
        secret_encrypted=encrypt_text(secret),
        created_by=created_by,
    )
    return WebhookCreated(webhook, secret)


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


@transaction.atomic
def webhook_set_enabled(*, webhook: Webhook, enabled: bool) -> Webhook:
    webhook.enabled = enabled
    webhook.save(update_fields=["enabled"])
    return webhook


def webhook_secret(webhook: Webhook) -> str:
    return decrypt_text(webhook.secret_encrypted)


# --- Fan-out: one delivery per (transition, matching webhook) ------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def status_event_payload(*, event, machine: dict) -> dict:
    """The JSON body: Event Grid's envelope (id, eventType, subject, eventTime, data)."""
    resource_id = ids.machine_id(str(machine["subscription_guid"]), machine["resource_group_name"], machine["name"])
    return {
        "id": f"status-event-{event.id}",
        "eventType": EVENT_TYPE,
        "subject": resource_id,
        "eventTime": _iso(event.at),
        "dataVersion": "1",
        "data": {
            "resourceId": resource_id,
            "subscriptionId": str(machine["subscription_guid"]),
            "resourceGroup": machine["resource_group_name"],
            "machineName": machine["name"],
            "previousStatus": event.from_status,
            "status": event.to_status,
            "statusChangedAt": _iso(event.at),
            "reason": event.reason,
        },
    }


def webhook_deliveries_create(*, events: Sequence) -> list[int]:
    """Create the deliveries for ``events`` (rows with id, machine_id, from_status, to_status, at, reason) in the
    caller's transaction, and enqueue their tasks once it commits. Returns the delivery ids.

    Cost: one query when no webhook is enabled; otherwise two queries plus one bulk insert per call.
    """
    if not events:
        return []
    hooks = list(Webhook.objects.filter(enabled=True).values_list("pk", "subscription_id", "resource_group_id"))
    if not hooks:
        return []
    machine_ids = {e.machine_id for e in events}
    machines = {
        row["pk"]: row
        for row in Machine.objects.filter(pk__in=machine_ids).values(
            "pk",
            "name",
            "resource_group_id",
            resource_group_name=F("resource_group__name"),
            subscription_pk=F("resource_group__subscription_id"),
            subscription_guid=F("resource_group__subscription__subscription_id"),
        )
    }
    deliveries = []
    for event in events:
        machine = machines.get(event.machine_id)
        if machine is None:
            continue
        payload = None
        for hook_id, subscription_id, resource_group_id in hooks:
            if subscription_id != machine["subscription_pk"]:
                continue
            if resource_group_id is not None and resource_group_id != machine["resource_group_id"]:
                continue
            payload = payload or status_event_payload(event=event, machine=machine)
            deliveries.append(WebhookDelivery(webhook_id=hook_id, event_id=event.id, payload=payload))
    if not deliveries:
        return []
    ids = [d.pk for d in WebhookDelivery.objects.bulk_create(deliveries)]
    transaction.on_commit(lambda: webhook_deliveries_enqueue(delivery_ids=ids))
    return ids


def webhook_deliveries_enqueue(*, delivery_ids: Sequence[int]) -> None:
    """One ``webhook_deliver_task`` per delivery, addressed by its Celery name: the tasks module imports these
    services (the sweep, the flush), so the services never import it back (``MachinesConfig.ready`` registers it in
    every process; a name that is not registered raises ``KeyError`` here instead of sending nothing)."""
    task = celery_app.tasks[DELIVER_TASK]
    for delivery_id in delivery_ids:
        task.delay(delivery_id)


def webhook_deliveries_requeue_stale(*, now: datetime, older_than: timedelta = STALE_AFTER) -> int:
    """Enqueue again the deliveries that were written but never attempted (the process died between the commit
    and the enqueue, or the broker lost the message). Delivery is at least once: receivers dedupe on
    ``X-ArcPortal-Delivery``."""
    ids = list(
        WebhookDelivery.objects.filter(
            attempts=0, delivered_at__isnull=True, created_at__lt=now - older_than, webhook__enabled=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    webhook_deliveries_enqueue(delivery_ids=ids)
    return len(ids)


# --- Delivery ------------------------------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>.<body>")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_signature_valid(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(webhook_signature(secret=secret, timestamp=timestamp, body=body), signature)


def webhook_request_headers(*, delivery: WebhookDelivery, secret: str, body: bytes, timestamp: str) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": "ArcPortal-Webhook/1",
        "X-ArcPortal-Event": EVENT_TYPE,
        "X-ArcPortal-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }


def status_line(status_code: int) -> str:
    """``HTTP 500 Internal Server Error``: the code and its standard reason phrase (not the receiver's)."""
    try:
        return f"HTTP {status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        return f"HTTP {status_code}"


def webhook_delivery_send(*, delivery_id: int, transport: httpx.BaseTransport | None = None) -> int | None:
    """Post one delivery. Records the attempt; returns the receiver's status code (None if the delivery or its
    webhook is gone or disabled). Raises ``WebhookDeliveryFailed`` when the receiver should be tried again."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.delivered_at is not None:
        return None
    webhook = delivery.webhook
    if not webhook.enabled:
        WebhookDelivery.objects.filter(pk=delivery_id).update(last_error="Webhook disabled; not sent.")
        return None
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = webhook_request_headers(delivery=delivery, secret=webhook_secret(webhook), body=body, timestamp=timestamp)
    status_code = None
    error = ""
    try:
        # Resolved and checked again now (DNS may have changed since the webhook was created); the request goes to
        # the address checked. No redirects, no proxy from the environment: nothing else decides where it goes.
        target = egress.resolve_target(webhook.url, allow=settings.ARC_WEBHOOK_ALLOWED_HOSTS)
        url, host_headers, extensions = egress.pinned(webhook.url, target)
        with httpx.Client(
            timeout=DELIVERY_TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,
            transport=transport or DELIVERY_TRANSPORT,
        ) as client:
            response = client.post(url, content=body, headers={**headers, **host_headers}, extensions=extensions)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = status_line(status_code)  # never the body: receivers' pages are not the portal's to show
    except egress.AddressNotAllowed as exc:
        error = f"Not sent: {exc}"
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"
    update = {"attempts": F("attempts") + 1, "status_code": status_code, "last_error": error[:MAX_ERROR_LENGTH]}
    if not error:
        update["delivered_at"] = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery_id).update(**update)
    if error:
        logger.warning("webhook delivery %s to %s failed: %s", delivery_id, webhook.url, error)
        raise WebhookDeliveryFailed(error)
    return status_code


# --- Reads shared by the portal page -------------------------------------------------------------------------


def webhook_list():
    return Webhook.objects.select_related("subscription", "resource_group").annotate(
        delivery_count=Count("deliveries"),
        delivered_count=Count("deliveries", filter=Q(deliveries__delivered_at__isnull=False)),
    )


def webhook_get(*, pk: int) -> Webhook:
    webhook = Webhook.objects.select_related("subscription", "resource_group").filter(pk=pk).first()
    if webhook is None:
        raise NotFound("The webhook does not exist.")
    return webhook


def webhook_recent_deliveries(*, webhook: Webhook, limit: int = 50):
    return webhook.deliveries.select_related("event").order_by("-created_at", "-id")[:limit]


def webhook_scope_choices() -> list[tuple[str, str]]:
    """``sub:<pk>`` for a whole subscription, ``rg:<pk>`` for one resource group."""
    choices: list[tuple[str, str]] = []
    for subscription in Subscription.objects.order_by("display_name", "pk"):
        choices.append((f"sub:{subscription.pk}", f"{subscription.display_name} (whole subscription)"))
        for group in ResourceGroup.objects.filter(subscription=subscription).order_by("name"):
            choices.append((f"rg:{group.pk}", f"{subscription.display_name} / {group.name}"))
    return choices


def webhook_scope_resolve(value: str) -> tuple[Subscription, ResourceGroup | None]:
    kind, _, pk = (value or "").partition(":")
    if kind == "sub" and pk.isdigit():
        subscription = Subscription.objects.filter(pk=int(pk)).first()
        if subscription:
            return subscription, None
    if kind == "rg" and pk.isdigit():
        group = ResourceGroup.objects.select_related("subscription").filter(pk=int(pk)).first()
        if group:
            return group.subscription, group
    raise Invalid("Choose a subscription or a resource group.", target="scope")
