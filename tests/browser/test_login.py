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
