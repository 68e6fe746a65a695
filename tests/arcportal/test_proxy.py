"""``arcportal/proxy.py``: behind the TLS proxy the client address is the last X-Forwarded-For entry (the one the
proxy appended); without the proxy setting the middleware is not installed (tests/arcportal/test_deploy_check.py)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory

from arcportal.proxy import ForwardedForMiddleware, forwarded_client


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", "203.0.113.7"),
        ("6.6.6.6,2001:db8::1", "2001:db8::1"),
        ("203.0.113.7, not-an-address", None),
        ("", None),
    ],
)
def test_the_last_entry_counts(header, expected):
    assert forwarded_client(header) == expected


def test_the_middleware_sets_remote_addr_and_leaves_it_without_a_usable_header():
    seen = []
    middleware = ForwardedForMiddleware(lambda request: seen.append(request.META["REMOTE_ADDR"]))
    factory = RequestFactory()
    middleware(factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4"))
    middleware(factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="garbage"))
    middleware(factory.get("/", REMOTE_ADDR="127.0.0.1"))
    assert seen == ["198.51.100.4", "127.0.0.1", "127.0.0.1"]


def test_not_installed_without_the_proxy():
    assert "arcportal.proxy.ForwardedForMiddleware" not in settings.MIDDLEWARE
