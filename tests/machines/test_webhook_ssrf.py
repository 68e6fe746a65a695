"""Issue 10 item 13: webhooks can't be pointed at the portal's own network (SSRF), and receivers' bodies stay out.

A webhook URL's host is resolved and every address must be a public unicast one (no loopback, link-local, private,
shared, multicast, reserved or unspecified address, IPv4-mapped forms included), when the webhook is created and
again at every delivery, which then connects to the address it checked (DNS can change in between). The setting
``ARC_WEBHOOK_ALLOWED_HOSTS`` names receivers that may be internal (host names, ``.suffix`` domains, IP addresses
or networks). Only the receiver's status line is stored, never its body.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from django.urls import reverse

from arcportal.exceptions import Invalid
from machines import status as rules
from machines.models import WebhookDelivery
from machines.services import machine_status_sweep
from machines.webhooks import WebhookDeliveryFailed, webhook_create, webhook_delivery_send
from tests.machines.factories import MachineFactory, SubscriptionFactory

PUBLIC = "93.184.215.14"
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture(autouse=True)
def no_allow_list(settings):
    settings.ARC_WEBHOOK_ALLOWED_HOSTS = []


class FakeDns(dict):
    def __init__(self):
        super().__init__()
        self.lookups: list[str] = []


@pytest.fixture
def dns(monkeypatch):
    """A DNS of our own: ``dns["host"] = ["addr", …]``; IP literals resolve as usual; other names don't resolve."""
    table = FakeDns()
    lookups = table.lookups

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        if host in table:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in table[host]
            ]
        try:
            return REAL_GETADDRINFO(host, port, *args, **{**kwargs, "flags": socket.AI_NUMERICHOST})
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


class Receiver:
    def __init__(self, code: int = 204, body: str = ""):
        self.code, self.body = code, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.code, text=self.body)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8000/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0.0.0.0/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
    ],
)
def test_internal_addresses_are_refused(dns, url):
    with pytest.raises(Invalid) as info:
        webhook_create(subscription=SubscriptionFactory(), url=url)
    assert info.value.target == "url" and "not allowed" in info.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("addresses", "message"),
    [(["10.0.0.5"], "10.0.0.5"), ([PUBLIC, "169.254.169.254"], "169.254.169.254"), ([], "could not be resolved")],
)
def test_names_are_checked_after_resolution_every_address(dns, addresses, message):
    if addresses:
        dns["hooks.example.com"] = addresses
    with pytest.raises(Invalid) as info:
        webhook_create(subscription=SubscriptionFactory(), url="https://hooks.example.com/arc")
    assert message in info.value.message


@pytest.mark.django_db
def test_a_public_name_is_accepted(dns):
    dns["hooks.example.com"] = [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]
    assert webhook_create(subscription=SubscriptionFactory(), url="https://hooks.example.com/arc").webhook.pk


@pytest.mark.django_db
def test_the_allow_list_names_internal_receivers(dns, settings):
    settings.ARC_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "10.20.0.0/16", "hooks.corp.example", ".internal.example"]
    dns.update({"hooks.corp.example": ["10.9.9.9"], "a.internal.example": ["192.168.7.7"], "x.example": ["10.20.1.1"]})
    subscription = SubscriptionFactory()
    for url in (
        "http://127.0.0.1:9000/hook",
        "http://10.20.3.4/hook",
        "https://hooks.corp.example/arc",
        "https://a.internal.example/arc",
        "https://x.example/arc",  # resolves into an allowed network
    ):
        assert webhook_create(subscription=subscription, url=url).webhook.pk
    for url in ("http://127.0.0.2/hook", "https://evil.corp.example.org/", "https://internal.example.evil/"):
        dns.setdefault("evil.corp.example.org", ["10.9.9.9"])
        dns.setdefault("internal.example.evil", ["10.9.9.9"])
        with pytest.raises(Invalid):
            webhook_create(subscription=subscription, url=url)


@pytest.fixture
def pending_delivery(db, dns, now):
    dns["hooks.example.com"] = [PUBLIC]
    machine = MachineFactory(last_heartbeat_at=now - timedelta(hours=1), status=rules.CONNECTED)
    created = webhook_create(subscription=machine.resource_group.subscription, url="https://hooks.example.com/arc")
    machine_status_sweep(now=now)
    return created.webhook, WebhookDelivery.objects.get()


def test_delivery_connects_to_the_address_it_checked(pending_delivery, dns):
    _, delivery = pending_delivery
    receiver = Receiver(204)
    before = len(dns.lookups)
    assert webhook_delivery_send(delivery_id=delivery.pk, transport=receiver.transport) == 204
    assert len(dns.lookups) > before  # resolved again at delivery time
    (request,) = receiver.requests
    assert request.url.host == PUBLIC and request.url.path == "/arc" and request.url.scheme == "https"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions.get("sni_hostname") == "hooks.example.com"  # TLS checks the name, not the address


def test_delivery_refuses_a_name_that_now_resolves_inside(pending_delivery, dns):
    _, delivery = pending_delivery
    dns["hooks.example.com"] = ["169.254.169.254"]
    receiver = Receiver(204)
    with pytest.raises(WebhookDeliveryFailed):
        webhook_delivery_send(delivery_id=delivery.pk, transport=receiver.transport)
    assert receiver.requests == []  # nothing was sent
    delivery.refresh_from_db()
    assert delivery.delivered_at is None and "169.254.169.254" in delivery.last_error


def test_only_the_status_line_of_a_failing_receiver_is_kept(pending_delivery, portal_client):
    webhook, delivery = pending_delivery
    with pytest.raises(WebhookDeliveryFailed):
        webhook_delivery_send(
            delivery_id=delivery.pk, transport=Receiver(500, "db password is hunter2 at 10.0.0.8").transport
        )
    delivery.refresh_from_db()
    assert delivery.status_code == 500 and delivery.last_error == "HTTP 500 Internal Server Error"
    page = portal_client.get(reverse("webhooks:webhook-detail", args=[webhook.pk])).content.decode()
    assert "hunter2" not in page and "HTTP 500 Internal Server Error" in page


@pytest.mark.django_db
def test_the_portal_form_refuses_an_internal_url(portal_client, subscription, dns):
    response = portal_client.post(
        reverse("webhooks:webhook-list"), {"url": "http://169.254.169.254/latest", "scope": f"sub:{subscription.pk}"}
    )
    assert response.status_code == 200 and "not allowed" in response.content.decode()
    from machines.models import Webhook

    assert not Webhook.objects.exists()
