"""The only list envelope of the ARM plane: ``{"value": [...], "nextLink": "<absolute url>"}`` (API-CONTRACT.md §3).

The continuation token is ``$skiptoken=<offset>`` (URL-safe digits). ``nextLink`` is absolute and built from the host
the client used: ``request.build_absolute_uri`` honours ``X-Forwarded-Host``/``-Proto`` only when Django trusts
them (``DJANGO_BEHIND_TLS_PROXY`` sets ``USE_X_FORWARDED_HOST`` and ``SECURE_PROXY_SSL_HEADER``). The page size is
``settings.ARM_PAGE_SIZE``, read per request so tests can override it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet

from arcportal.arm.errors import ArmError

SKIPTOKEN = "$skiptoken"
TOP = "$top"


def page_size() -> int:
    return max(1, int(settings.ARM_PAGE_SIZE))


def _offset(request) -> int:
    raw = request.GET.get(SKIPTOKEN)
    if raw in (None, ""):
        return 0
    if not raw.isdigit() or len(raw) > 12:
        raise ArmError(
            f"The continuation token '{raw}' is invalid.", code="InvalidSkipToken", status=400, target=SKIPTOKEN
        )
    return int(raw)


def _top(request) -> int | None:
    raw = request.GET.get(TOP)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ArmError(f"The value '{raw}' of $top must be 1 to 1000.", code="InvalidTopParameter", status=400)
    return int(raw)


def next_link(request, offset: int) -> str:
    """Absolute URL of the next page: the same path and query, with ``$skiptoken`` replaced."""
    query = [(key, value) for key, values in request.GET.lists() for value in values if key != SKIPTOKEN]
    query.append((SKIPTOKEN, str(offset)))
    return request.build_absolute_uri(f"{request.path}?{urlencode(query, safe='$')}")


def paginate(
    request, items: QuerySet | Sequence[Any], render: Callable[[Sequence[Any]], list[dict[str, Any]]]
) -> dict[str, Any]:
    """One page of ``items`` (a queryset with a stable order, or a list) rendered by ``render``.

    ``$top`` caps the total number of items returned across pages, as ARM does for resource groups.
    """
    size = page_size()
    offset = _offset(request)
    top = _top(request)
    end = offset + size
    if top is not None:
        end = min(end, top)
    window = list(items[offset : end + 1]) if end > offset else []
    has_more = len(window) > end - offset and (top is None or end < top)
    page = window[: max(0, end - offset)]
    body: dict[str, Any] = {"value": render(page)}
    if has_more:
        body["nextLink"] = next_link(request, end)
    return body
