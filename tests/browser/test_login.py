"""Signing in through the real login form in Chromium."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_wrong_password_shows_an_error_and_right_one_signs_in(page, live_server, admin_user, screenshot):
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".form-error").is_visible()
    screenshot("login-error")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").first.inner_text().startswith("Machines")


def test_too_many_wrong_passwords_show_when_to_try_again(page, live_server, admin_user, screenshot, settings):
    """Issue 10 item 11: after the per-user limit, the page says so (429) and even the right password waits."""
    settings.ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT = "2/10m"
    page.goto(f"{live_server.url}/accounts/login/")
    for _ in range(2):
        page.fill("#id_username", "admin")
        page.fill("#id_password", "wrong")
        page.click("button[type=submit]")
        assert "Please enter a correct" in page.locator(".form-error").inner_text()
    page.fill("#id_password", "correct horse battery")
    with page.expect_response(lambda r: r.url.endswith("/accounts/login/") and r.request.method == "POST") as info:
        page.click("button[type=submit]")
    assert info.value.status == 429
    message = page.locator(".form-error").inner_text()
    assert "Too many sign-in attempts" in message and "Try again in" in message
    assert page.locator("#id_username").input_value() == "admin"
    screenshot("login-rate-limited")
    assert "/accounts/login/" in page.url
