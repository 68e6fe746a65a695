"""The request being served, for ``record()``'s defaults: its correlation id and the caller's address.

Set by ``arcportal.activity.middleware.CorrelationIdMiddleware`` for the duration of one request (a context variable:
safe with threads and with the ASGI front); empty outside a request (Celery tasks, management commands).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    correlation_id: str = ""
    caller_ip: str = ""
    request: Any = None
    #: The operations recorded while serving this request (``record()`` appends); the ARM plane's fallback event
    #: is written only when a write recorded nothing itself.
    recorded: list[str] = field(default_factory=list, compare=False)

    @property
    def caller(self) -> str:
        """Who is calling: the app id of a service principal, the user name of a portal user (``Principal.name``
        and a Django user's ``str`` both are), or "" before authentication. Read when an event is recorded, so an
        ARM request's bearer principal, set by DRF after this middleware ran, is seen."""
        user = getattr(self.request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return ""
        return str(user)


EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("activity_request", default=None)


def current() -> RequestContext:
    return _current.get() or EMPTY


def enter(context: RequestContext) -> contextvars.Token:
    return _current.set(context)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)
