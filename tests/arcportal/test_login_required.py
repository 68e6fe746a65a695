"""Nothing is reachable without signing in except the planes with their own authentication (release bar §6).

Walks every URL pattern of the project, so a page added later without thought is caught here: each pattern is
either a portal page (anonymous → redirect to the login page) or on the short public list below.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Planes with their own authentication (DESIGN.md §5), matched on the pattern's own text.
PUBLIC = re.compile(
    r"^\^?(healthz|accounts/login/|downloads/|his/|api/schema/|api/docs/|\(\?P<tenant>|subscriptions|providers"
    r"|/\?metadata/endpoints)",
    re.IGNORECASE,
)
DUMMY = {"int": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000001", "path": "x"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(pattern: str) -> str:
    """A request path for a route pattern: converters and named groups get dummy values."""
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: DUMMY.get(m.group(1) or "str", "x"), pattern)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "x", path)
    return "/" + path.strip("^$").replace("\\", "")


PORTAL_PATTERNS = sorted({p for p in _walk(get_resolver().url_patterns) if not PUBLIC.match(p)})


def test_the_walk_finds_the_portal_pages():
    assert {"", "portal/resourcegroups", "portal/add", "devicelogin", "portal/webhooks"} <= set(PORTAL_PATTERNS)


@pytest.mark.parametrize("pattern", PORTAL_PATTERNS)
def test_portal_pages_redirect_anonymous_users_to_login(client, pattern):
    for method in (client.get, client.post):
        response = method(_concrete(pattern))
        assert response.status_code == 302, (pattern, response.status_code)
        assert response["Location"].startswith("/accounts/login/"), (pattern, response["Location"])


def test_htmx_requests_of_anonymous_users_get_401_with_a_redirect_header(client):
    response = client.get("/", HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/accounts/login/")
