"""HTMX helpers: one place decides whether a request wants a fragment (NetBox's utilities/htmx.py idea)."""

from django.http import HttpRequest


def is_partial(request: HttpRequest) -> bool:
    """True for an HTMX request that is not a boosted navigation: answer with the fragment only."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted
