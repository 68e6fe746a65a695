"""Every ARM write is in the activity log, whichever app serves it (``ArmApiView.dispatch`` calls this).

A write (PUT, PATCH, DELETE, POST other than a read action) runs in one transaction. When it succeeds and its
services recorded nothing themselves (``record()`` inside them names the operation precisely), one Succeeded event
named after the view's RBAC action is written in that same transaction. When it fails (4xx/5xx), everything it
wrote rolls back, and one Failed event with the ARM error is written afterwards on its own: the refused operation
is in the log, the change is not in the database. Unauthenticated requests (401) are not recorded: anyone could
fill the log with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from arcportal.activity import context
from arcportal.activity.services import activity_record

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
_VERB = {"PUT": "write", "PATCH": "write", "DELETE": "delete", "POST": "action"}


def _operation(view, method: str) -> str:
    action = getattr(view, "rbac_action", "") or ""
    if "/" in action:
        return action
    return f"{view.__class__.__name__}/{_VERB[method]}"


def _error(response) -> dict[str, Any]:
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return {"code": str(error.get("code", "")), "message": str(error.get("message", ""))}
    return {"code": str(response.status_code), "message": ""}


def records(view, method: str) -> bool:
    return method in WRITE_METHODS and not (getattr(view, "rbac_action", "") or "").endswith("/read")


def recorded_dispatch(view, request, dispatch: Callable[[], Any]):
    """Run ``dispatch()`` (the view's own) as one recorded write."""
    resource_id = "/" + request.path.lstrip("/").rstrip("/")
    state = context.current()
    before = len(state.recorded)
    with transaction.atomic():
        response = dispatch()
        failed = response.status_code >= 400
        if failed:
            transaction.set_rollback(True)
        elif len(state.recorded) == before:
            activity_record(
                operation=_operation(view, request.method),
                status="Succeeded",
                resource_id=resource_id,
                caller="",
                properties={"statusCode": response.status_code, "httpMethod": request.method},
            )
    user = getattr(request, "user", None)
    if failed and user is not None and getattr(user, "is_authenticated", False):
        activity_record(
            operation=_operation(view, request.method),
            status="Failed",
            resource_id=resource_id,
            caller=str(user),
            properties={"statusCode": response.status_code, "httpMethod": request.method},
            error=_error(response),
        )
    return response
