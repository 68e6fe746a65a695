"""Writes of the activity log: one event per operation, and the retention purge."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import connection
from django.utils import timezone

from arcportal.activity import context
from arcportal.activity.models import ActivityEvent
from arcportal.activity.resource_ids import filing

STATUSES = frozenset({"Started", "Accepted", "Succeeded", "Failed"})
LEVELS = frozenset({"Informational", "Warning", "Error", "Critical", "Verbose"})


def _error_of(error: dict[str, Any] | str | None) -> dict[str, Any] | None:
    if error is None:
        return None
    if isinstance(error, str):
        return {"code": "Failed", "message": error}
    return {"code": str(error.get("code", "Failed")), "message": str(error.get("message", ""))}


def activity_record(
    *,
    operation: str,
    status: str,
    resource_id: str,
    caller: str,
    caller_ip: str = "",
    correlation_id: str = "",
    level: str = "Informational",
    properties: dict[str, Any] | None = None,
    error: dict[str, Any] | str | None = None,
    at: dt.datetime | None = None,
) -> ActivityEvent:
    """One event, written on the caller's connection: inside the caller's ``transaction.atomic`` it commits or rolls
    back with the change it records. A Failed event without an error gets level Error."""
    if status not in STATUSES:
        raise ValueError(f"Unknown activity status {status!r}; use one of {sorted(STATUSES)}.")
    if level not in LEVELS:
        raise ValueError(f"Unknown activity level {level!r}; use one of {sorted(LEVELS)}.")
    request = context.current()
    filed = filing(resource_id)
    if status == "Failed" and level == "Informational":
        level = "Error"
    if request.request is not None:
        request.recorded.append(operation)
    return ActivityEvent.objects.create(
        event_timestamp=at or timezone.now(),
        operation_name=operation[:200],
        status=status,
        level=level,
        caller=(caller or request.caller)[:256],
        caller_ip=(caller_ip or request.caller_ip)[:64],
        correlation_id=(correlation_id or request.correlation_id)[:200],
        resource_id=resource_id[:1024],
        resource_key=filed.key[:1024],
        subscription_id=filed.subscription_id[:64],
        resource_group=filed.resource_group[:90],
        resource_provider=filed.resource_provider[:200],
        resource_type=filed.resource_type[:200],
        properties=dict(properties or {}),
        error=_error_of(error),
    )


def _many_values(event: dict[str, Any]) -> dict[str, Any]:
    """Every column of one ``activity_record_many`` event, by field name."""
    filed = filing(event["resource_id"])
    return {
        "event_data_id": uuid.uuid4(),
        "operation_id": uuid.uuid4(),
        "event_timestamp": event.get("at") or timezone.now(),
        "operation_name": event["operation"][:200],
        "status": event["status"],
        "level": event.get("level", "Informational"),
        "category": event.get("category", "Administrative"),
        "caller": event.get("caller", "")[:256],
        "caller_ip": event.get("caller_ip", ""),
        "correlation_id": event.get("correlation_id", ""),
        "resource_id": event["resource_id"][:1024],
        "resource_key": filed.key[:1024],
        "subscription_id": filed.subscription_id[:64],
        "resource_group": filed.resource_group[:90],
        "resource_provider": filed.resource_provider[:200],
        "resource_type": filed.resource_type[:200],
        "properties": dict(event.get("properties") or {}),
        "error": None,
    }


def activity_record_many(events: list[dict[str, Any]]) -> int:
    """Bulk writer for set-based callers (the status sweep): each item takes ``activity_record``'s keywords
    (``at`` included); on the caller's transaction, one ``COPY`` on PostgreSQL, else one bulk INSERT."""
    values = [_many_values(event) for event in events]
    if connection.vendor == "postgresql":
        _copy(values)
    else:
        ActivityEvent.objects.bulk_create([ActivityEvent(**row) for row in values], batch_size=1000)
    return len(values)


def _copy(values: list[dict[str, Any]]) -> None:
    """``COPY … FROM STDIN``: a sweep chunk's 5,000 events took ~1.1 s as a multi-row INSERT of model instances, most
    of it building, compiling and adapting the statement (docs/performance.md, "Status sweep"). Every column comes
    from ``_many_values`` (a test holds it to the model's fields); the JSON ones are adapted as Django adapts them."""
    if not values:
        return
    fields = [field for field in ActivityEvent._meta.concrete_fields if not field.primary_key]
    json_fields = {field.name: field for field in fields if field.get_internal_type() == "JSONField"}
    quote = connection.ops.quote_name
    statement = f"COPY {quote(ActivityEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in values:
            for name, field in json_fields.items():
                if row[name] is not None:
                    row[name] = field.get_db_prep_save(row[name], connection)
            copy.write_row([row[field.name] for field in fields])


def activity_purge(*, now: dt.datetime, retention_days: int) -> int:
    """Delete the events older than ``retention_days`` before ``now``; returns how many."""
    cutoff = now - dt.timedelta(days=retention_days)
    deleted, _ = ActivityEvent.objects.filter(event_timestamp__lt=cutoff).delete()
    return deleted
