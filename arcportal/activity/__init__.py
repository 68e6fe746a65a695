"""The activity log (issue 13): one event per operation of every layer, written in the transaction of its change.

It lives in the core (not in machines, as DESIGN.md §8 sketched) because identity, layer 2, records sign-ins too
(docs/decisions.md, "Activity log and locks"). Call ``record(...)`` inside the ``transaction.atomic`` block of the
change it records: both commit or neither does.
"""

from __future__ import annotations

from typing import Any

INFORMATIONAL = "Informational"
WARNING = "Warning"
ERROR = "Error"
CRITICAL = "Critical"

STARTED = "Started"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
ACCEPTED = "Accepted"


def record(
    *,
    operation: str,
    status: str,
    resource_id: str,
    caller: str,
    caller_ip: str = "",
    correlation_id: str = "",
    level: str = INFORMATIONAL,
    properties: dict[str, Any] | None = None,
    error: dict[str, Any] | str | None = None,
):
    """Write one activity event (``arcportal.activity.services.activity_record``); returns the ``ActivityEvent``.

    ``caller`` is a user name or an app id; an empty ``caller_ip`` / ``correlation_id`` is taken from the request
    being served (``arcportal.activity.middleware``), if any.
    """
    from arcportal.activity.services import activity_record

    return activity_record(
        operation=operation,
        status=status,
        resource_id=resource_id,
        caller=caller,
        caller_ip=caller_ip,
        correlation_id=correlation_id,
        level=level,
        properties=properties,
        error=error,
    )
