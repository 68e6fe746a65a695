"""``/devicelogin``: sign-in required, enter code, see what asks, approve or deny; wrong codes rate-limited."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from identity.device_codes import WRONG_CODE_LIMIT, device_code_issue
from identity.models import DeviceCode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def issued():
    return device_code_issue(
        client_id="agent",
        machine_name="web-01",
        resource_group="arc-servers",
        subscription_id="3f1c8b9e-0000-4000-8000-000000000001",
        requesting_ip="192.0.2.10",
    )


def test_devicelogin_requires_a_session(client):
    response = client.get("/devicelogin")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_enter_code_then_confirm_shows_what_asks_then_approve(portal_client, issued, admin_user):
    page = portal_client.get("/devicelogin")
    assert page.status_code == 200 and b'name="code"' in page.content
    typed = issued.record.user_code.lower().replace("-", "")
    response = portal_client.post("/devicelogin", {"code": typed})
    assert response.status_code == 302 and response["Location"].endswith("/devicelogin/confirm")
    confirm = portal_client.get("/devicelogin/confirm")
    body = confirm.content.decode()
    for expected in (
        "web-01",
        "arc-servers",
        "3f1c8b9e-0000-4000-8000-000000000001",
        "192.0.2.10",
        issued.record.user_code,
    ):
        assert expected in body
    done = portal_client.post("/devicelogin/confirm", {"decision": "approve"})
    assert done.status_code == 200 and "You have signed in" in done.content.decode()
    record = DeviceCode.objects.get()
    assert record.state == "approved" and record.decided_by == admin_user and record.decided_at is not None
    # Single use: the same code can't be entered again.
    again = portal_client.post("/devicelogin", {"code": issued.record.user_code})
    assert again.status_code == 400


def test_deny(portal_client, issued):
    portal_client.post("/devicelogin", {"code": issued.record.user_code})
    done = portal_client.post("/devicelogin/confirm", {"decision": "deny"})
    assert "Sign-in denied" in done.content.decode()
    assert DeviceCode.objects.get().state == "denied"


def test_confirm_without_having_entered_the_code_goes_back(portal_client, issued):
    response = portal_client.post("/devicelogin/confirm", {"decision": "approve"})
    assert response.status_code == 302 and response["Location"].endswith("/devicelogin")
    assert DeviceCode.objects.get().state == "pending"


def test_wrong_codes_show_an_error_then_are_rate_limited(portal_client, issued):
    for _ in range(WRONG_CODE_LIMIT):
        response = portal_client.post("/devicelogin", {"code": "XXXX-XXXX"})
        assert response.status_code == 400 and "wrong" in response.content.decode()
    blocked = portal_client.post("/devicelogin", {"code": issued.record.user_code})
    assert blocked.status_code == 429 and "Too many wrong codes" in blocked.content.decode()
    assert DeviceCode.objects.get().state == "pending"


def test_verification_uri_complete_prefills_the_code_but_still_needs_a_click(portal_client, issued):
    page = portal_client.get(f"/devicelogin?code={issued.record.user_code}")
    assert f'value="{issued.record.user_code}"' in page.content.decode()
    assert DeviceCode.objects.get().state == "pending"
