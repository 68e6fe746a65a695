"""The portal's 400 page for text refused at the edge (arcportal.textguard): it says what was refused and where."""

from __future__ import annotations


def test_a_nul_in_a_query_string_shows_the_400_page_with_the_reason(signed_in_page, live_server, screenshot):
    page = signed_in_page
    response = page.goto(f"{live_server.url}/portal/onboarding-errors?correlation_id=abc%00def")
    assert response.status == 400
    text = page.inner_text("body")
    assert "Bad request" in text and "correlation_id" in text and "NUL character (U+0000)" in text
    screenshot("refused-input-400")
