"""The webhook page in Chromium: an internal receiver is refused with the reason (issue 10 item 13)."""

import pytest

from machines.models import Webhook

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_internal_webhook_url_is_refused_with_the_reason(signed_in_page, live_server, subscription, screenshot):
    page = signed_in_page
    page.goto(f"{live_server.url}/portal/webhooks")
    page.fill("#id_url", "http://169.254.169.254/latest/meta-data/")
    page.click("#webhook-create button[type=submit]")
    error = page.locator(".field-error").inner_text()
    assert "not allowed" in error and "link-local" in error
    screenshot("webhook-internal-url-refused")
    assert not Webhook.objects.exists()
