"""Webhooks: creation and validation, encrypted secret, scope matching, signed delivery, retries, portal page."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from django.urls import reverse

from arcportal.crypto import decrypt_text
from arcportal.exceptions import Invalid
from machines import status as rules
from machines import webhooks
from machines.models import Webhook, WebhookDelivery
from machines.services import machine_record_heartbeat, machine_status_sweep
from machines.tasks import WEBHOOK_MAX_RETRIES, webhook_deliver_task
from machines.webhooks import (
    WebhookDeliveryFailed,
    webhook_create,
    webhook_delivery_send,
    webhook_signature,
    webhook_signature_valid,
)
from tests.machines.factories import MachineFactory, ResourceGroupFactory, SubscriptionFactory

OFFLINE = timedelta(seconds=1500)


class Receiver:
    """An ``httpx.MockTransport`` that records requests and answers with the given status codes in turn."""

    def __init__(self, *codes: int):
        self.codes = list(codes) or [204]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        return httpx.Response(code, text="nope" if code >= 300 else "")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def offline_machine(db, now):
    return MachineFactory(last_heartbeat_at=now - OFFLINE - timedelta(seconds=1), status=rules.CONNECTED)


# --- Management ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "javascript:alert(1)", "example.com/hook", "", "http://", "https://u:p@example.com/"],
)
def test_webhook_urls_must_be_http_or_https(db, url):
    subscription = SubscriptionFactory()
    with pytest.raises(Invalid):
        webhook_create(subscription=subscription, url=url)
    assert not Webhook.objects.exists()


def test_webhook_secret_is_returned_once_and_stored_encrypted(db):
    created = webhook_create(subscription=SubscriptionFactory(), url="https://hooks.example.test/arc")

    stored = Webhook.objects.get()
    assert created.secret.startswith("whsec_")
    assert created.secret not in stored.secret_encrypted
    assert decrypt_text(stored.secret_encrypted) == created.secret


def test_resource_group_scope_must_belong_to_the_subscription(db):
    with pytest.raises(Invalid):
        webhook_create(subscription=SubscriptionFactory(), resource_group=ResourceGroupFactory(), url="http://x.test/")


# --- Fan-out -------------------------------------------------------------------------------------------------


def test_only_webhooks_whose_scope_holds_the_machine_receive_its_transitions(db, now, offline_machine):
    rg = offline_machine.resource_group
    sub_hook = webhook_create(subscription=rg.subscription, url="https://a.test/").webhook
    rg_hook = webhook_create(subscription=rg.subscription, resource_group=rg, url="https://b.test/").webhook
    other_rg = ResourceGroupFactory(subscription=rg.subscription)
    webhook_create(subscription=rg.subscription, resource_group=other_rg, url="https://c.test/")
    webhook_create(subscription=SubscriptionFactory(), url="https://d.test/")
    disabled = webhook_create(subscription=rg.subscription, url="https://e.test/").webhook
    webhooks.webhook_set_enabled(webhook=disabled, enabled=False)

    machine_status_sweep(now=now)

    assert sorted(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == sorted([sub_hook.pk, rg_hook.pk])
    payload = WebhookDelivery.objects.filter(webhook=sub_hook).get().payload
    assert payload["eventType"] == "Microsoft.HybridCompute.MachineStatusChanged"
    assert payload["subject"] == (
        f"/subscriptions/{rg.subscription.subscription_id}/resourceGroups/{rg.name}"
        f"/providers/Microsoft.HybridCompute/machines/{offline_machine.name}"
    )
    assert payload["data"]["previousStatus"] == rules.CONNECTED
    assert payload["data"]["status"] == rules.DISCONNECTED
    expected_at = offline_machine.last_heartbeat_at + OFFLINE
    assert payload["data"]["statusChangedAt"] == expected_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_no_webhooks_means_no_deliveries(db, now, offline_machine):
    machine_status_sweep(now=now)
    assert not WebhookDelivery.objects.exists()


# --- Delivery --------------------------------------------------------------------------------------------------


def _one_delivery(machine, now, url="https://hooks.example.test/arc"):
    created = webhook_create(subscription=machine.resource_group.subscription, url=url)
    machine_status_sweep(now=now)
    return created, WebhookDelivery.objects.get()


def test_delivery_posts_the_payload_signed_over_timestamp_and_body(db, now, offline_machine):
    created, delivery = _one_delivery(offline_machine, now)
    receiver = Receiver(200)

    code = webhook_delivery_send(delivery_id=delivery.pk, transport=receiver.transport)

    assert code == 200
    (request,) = receiver.requests
    assert str(request.url) == "https://hooks.example.test/arc"
    assert request.headers["content-type"] == "application/json"
    body = request.content
    assert json.loads(body) == delivery.payload
    timestamp = request.headers["x-arcportal-timestamp"]
    assert timestamp.isdigit()
    signature = request.headers["x-arcportal-signature"]
    assert webhook_signature_valid(secret=created.secret, timestamp=timestamp, body=body, signature=signature)
    assert not webhook_signature_valid(secret="wrong", timestamp=timestamp, body=body, signature=signature)
    assert not webhook_signature_valid(
        secret=created.secret, timestamp=timestamp, body=body + b" ", signature=signature
    )
    delivery.refresh_from_db()
    assert (delivery.status_code, delivery.attempts, delivery.last_error) == (200, 1, "")
    assert delivery.delivered_at is not None


def test_signature_is_hmac_sha256_hex_of_timestamp_dot_body():
    # Reference value computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert webhook_signature(secret="s3cret", timestamp="1700000000", body=b'{"a":1}') == f"sha256={expected}"


def test_a_failing_receiver_is_recorded_and_raises_for_retry(db, now, offline_machine):
    _, delivery = _one_delivery(offline_machine, now)

    with pytest.raises(WebhookDeliveryFailed):
        webhook_delivery_send(delivery_id=delivery.pk, transport=Receiver(503).transport)

    delivery.refresh_from_db()
    assert delivery.status_code == 503
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("HTTP 503")
    assert delivery.delivered_at is None


def test_an_unreachable_receiver_is_recorded(db, now, offline_machine):
    _, delivery = _one_delivery(offline_machine, now)

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(WebhookDeliveryFailed):
        webhook_delivery_send(delivery_id=delivery.pk, transport=httpx.MockTransport(refuse))

    delivery.refresh_from_db()
    assert delivery.status_code is None
    assert "ConnectError" in delivery.last_error


def test_a_delivered_delivery_is_not_sent_again(db, now, offline_machine):
    _, delivery = _one_delivery(offline_machine, now)
    receiver = Receiver(200)
    webhook_delivery_send(delivery_id=delivery.pk, transport=receiver.transport)

    assert webhook_delivery_send(delivery_id=delivery.pk, transport=receiver.transport) is None
    assert len(receiver.requests) == 1


def test_the_task_retries_until_the_receiver_answers(db, now, offline_machine, monkeypatch):
    _, delivery = _one_delivery(offline_machine, now)
    receiver = Receiver(500, 502, 200)
    monkeypatch.setattr(webhooks, "DELIVERY_TRANSPORT", receiver.transport)
    # Eager retries run inline (no countdown); they only chain when eager exceptions don't propagate.
    monkeypatch.setitem(webhook_deliver_task.app.conf, "task_eager_propagates", False)

    result = webhook_deliver_task.apply(args=[delivery.pk])

    assert result.get() == 200

    delivery.refresh_from_db()
    assert len(receiver.requests) == 3
    assert (delivery.status_code, delivery.attempts) == (200, 3)
    assert delivery.delivered_at is not None


def test_the_task_gives_up_after_the_maximum_retries(db, now, offline_machine, monkeypatch):
    _, delivery = _one_delivery(offline_machine, now)
    receiver = Receiver(500)
    monkeypatch.setattr(webhooks, "DELIVERY_TRANSPORT", receiver.transport)
    monkeypatch.setitem(webhook_deliver_task.app.conf, "task_eager_propagates", False)

    result = webhook_deliver_task.apply(args=[delivery.pk])

    assert isinstance(result.result, WebhookDeliveryFailed)

    delivery.refresh_from_db()
    assert delivery.attempts == WEBHOOK_MAX_RETRIES + 1
    assert delivery.delivered_at is None


def test_heartbeat_transition_is_delivered_once_its_transaction_commits(
    db, now, django_capture_on_commit_callbacks, monkeypatch
):
    machine = MachineFactory(last_heartbeat_at=now - timedelta(hours=3), status=rules.DISCONNECTED)
    webhook_create(subscription=machine.resource_group.subscription, url="https://hooks.example.test/arc")
    receiver = Receiver(200)
    monkeypatch.setattr(webhooks, "DELIVERY_TRANSPORT", receiver.transport)

    with django_capture_on_commit_callbacks(execute=True):
        machine_record_heartbeat(machine_id=machine.pk, at=now)
        assert receiver.requests == []

    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].content)["data"]["status"] == rules.CONNECTED


# --- Portal page -----------------------------------------------------------------------------------------------


def test_webhook_page_adds_a_webhook_and_shows_its_secret_once(portal_client, subscription):
    url = reverse("webhooks:webhook-list")

    response = portal_client.post(url, {"url": "https://hooks.example.test/arc", "scope": f"sub:{subscription.pk}"})

    assert response.status_code == 201
    webhook = Webhook.objects.get()
    secret = decrypt_text(webhook.secret_encrypted)
    assert secret in response.content.decode()
    page = portal_client.get(url)
    assert page.status_code == 200
    assert "https://hooks.example.test/arc" in page.content.decode()
    assert secret not in page.content.decode()


def test_webhook_page_rejects_a_non_http_url(portal_client, subscription):
    response = portal_client.post(
        reverse("webhooks:webhook-list"), {"url": "file:///etc/passwd", "scope": f"sub:{subscription.pk}"}
    )
    assert response.status_code == 200
    assert "http://" in response.content.decode()
    assert not Webhook.objects.exists()


def test_webhook_page_scopes_to_a_resource_group(portal_client, subscription):
    group = ResourceGroupFactory(subscription=subscription)
    portal_client.post(reverse("webhooks:webhook-list"), {"url": "https://h.test/", "scope": f"rg:{group.pk}"})
    assert Webhook.objects.get().resource_group == group


def test_webhook_page_removes_a_webhook(portal_client, subscription):
    webhook = webhook_create(subscription=subscription, url="https://hooks.example.test/arc").webhook

    response = portal_client.post(reverse("webhooks:webhook-delete", args=[webhook.pk]))

    assert response.status_code == 302
    assert not Webhook.objects.exists()


def test_webhook_detail_shows_the_delivery_log(portal_client, now, offline_machine):
    created, delivery = _one_delivery(offline_machine, now)
    webhook_delivery_send(delivery_id=delivery.pk, transport=Receiver(202).transport)

    response = portal_client.get(reverse("webhooks:webhook-detail", args=[created.webhook.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert offline_machine.name in content
    assert "202" in content


def test_webhook_page_is_for_administrators_only(client, django_user_model, subscription):
    user = django_user_model.objects.create_user(username="reader", password="pw-reader-123")
    client.force_login(user)
    assert client.get(reverse("webhooks:webhook-list")).status_code == 403


def test_deliveries_never_attempted_are_enqueued_again(db, now, offline_machine, monkeypatch):
    _, delivery = _one_delivery(offline_machine, now)
    sent = []
    monkeypatch.setattr(webhook_deliver_task, "delay", sent.append)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=now - timedelta(minutes=10))
    fresh = WebhookDelivery.objects.create(webhook=delivery.webhook, payload={}, event=None)
    WebhookDelivery.objects.filter(pk=fresh.pk).update(created_at=now - timedelta(minutes=1))
    attempted = WebhookDelivery.objects.create(webhook=delivery.webhook, payload={}, attempts=2)
    WebhookDelivery.objects.filter(pk=attempted.pk).update(created_at=now - timedelta(hours=1))

    assert webhooks.webhook_deliveries_requeue_stale(now=now) == 1
    assert sent == [delivery.pk]
    assert fresh.pk not in sent
