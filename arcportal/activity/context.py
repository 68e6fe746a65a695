"""The request being served, for ``record()``'s defaults: its correlation id and the caller's address.

Set by ``arcportal.activity.middleware.CorrelationIdMiddleware`` for the duration of one request (a context variable:
safe with threads and with the ASGI front); empty outside a request (Celery tasks, management commands).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    correlation_id: str = ""
    caller_ip: str = ""


EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("activity_request", default=None)


def current() -> RequestContext:
    return _current.get() or EMPTY


def enter(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)
