"""Behind the TLS proxy (``DJANGO_BEHIND_TLS_PROXY=true``) every request comes from the proxy's address: the client's
is the last ``X-Forwarded-For`` entry, the one the proxy appended (``deploy/nginx/arcportal.conf`` sends
``$proxy_add_x_forwarded_for``; entries before it are whatever the client claimed). This middleware puts that
address into ``REMOTE_ADDR`` first thing, so per-client limits (``PUT /his/log``, sign-in, device codes) and the
addresses stored with failure reports and device codes are the client's, not nginx's. Installed by the settings
only behind the proxy: without one, the header is the client's own claim and is ignored."""

from __future__ import annotations

import ipaddress


def forwarded_client(header: str) -> str | None:
    """The last entry of an ``X-Forwarded-For`` value when it is an IP address."""
    last = header.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


class ForwardedForMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        if client is not None:
            request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
