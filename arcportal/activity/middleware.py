"""A correlation id per request, as Azure Resource Manager does: the client's ``x-ms-correlation-request-id`` when it
sent a usable one, else a new GUID; returned in the response header of the same name and recorded with every
activity event the request writes (with the caller's address: ``REMOTE_ADDR``, which ``arcportal/proxy.py`` has
already replaced by the client's behind the TLS proxy)."""

from __future__ import annotations

import re
import uuid

from arcportal.activity import context

HEADER = "x-ms-correlation-request-id"
# Azure accepts any short token here; we keep printable ASCII without separators so it is safe in logs and CSV.
USABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id_of(value: str | None) -> str:
    return value if value and USABLE.match(value) else str(uuid.uuid4())


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = correlation_id_of(request.headers.get(HEADER))
        request.correlation_id = correlation_id
        token = context.enter(
            context.RequestContext(
                correlation_id=correlation_id, caller_ip=request.META.get("REMOTE_ADDR", ""), request=request
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.leave(token)
        response[HEADER] = correlation_id
        return response
