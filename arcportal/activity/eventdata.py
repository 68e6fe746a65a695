"""An activity event in Azure Monitor's ``EventData`` shape (``azure-mgmt-monitor``'s model), and ``$select``."""

from __future__ import annotations

from typing import Any

from arcportal.activity.models import ActivityEvent

SELECTABLE = (
    "authorization",
    "caller",
    "category",
    "claims",
    "correlationId",
    "description",
    "eventDataId",
    "eventName",
    "eventTimestamp",
    "httpRequest",
    "id",
    "level",
    "operationId",
    "operationName",
    "properties",
    "resourceGroupName",
    "resourceId",
    "resourceProviderName",
    "resourceType",
    "status",
    "subStatus",
    "submissionTimestamp",
    "subscriptionId",
    "tenantId",
)
_SELECTABLE = {name.lower(): name for name in SELECTABLE}


def parse_select(value: str | None) -> list[str] | None:
    """The fields ``$select`` names (any case), or None for all; ``ValueError`` naming an unknown field."""
    if value is None or not value.strip():
        return None
    chosen = []
    for part in value.split(","):
        name = _SELECTABLE.get(part.strip().lower())
        if name is None:
            raise ValueError(f"The $select field '{part.strip()}' is not an EventData property.")
        chosen.append(name)
    return chosen


def _text(value: str) -> dict[str, str]:
    return {"value": value, "localizedValue": value}


def _iso(moment) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_data(event: ActivityEvent, *, tenant_id: str, select: list[str] | None = None) -> dict[str, Any]:
    ticks = int(event.event_timestamp.timestamp() * 10_000_000) + 621355968000000000
    body: dict[str, Any] = {
        "authorization": {"action": event.operation_name, "scope": event.resource_id},
        "caller": event.caller,
        "channels": "Operation",
        "claims": {},
        "correlationId": event.correlation_id,
        "description": "",
        "eventDataId": str(event.event_data_id),
        "eventName": _text("EndRequest" if event.status in ("Succeeded", "Failed") else "BeginRequest"),
        "category": _text(event.category),
        "httpRequest": {"clientIpAddress": event.caller_ip, "method": str(event.properties.get("httpMethod", ""))},
        "id": f"{event.resource_id}/events/{event.event_data_id}/ticks/{ticks}",
        "level": event.level,
        "resourceGroupName": event.resource_group,
        "resourceProviderName": _text(event.resource_provider),
        "resourceId": event.resource_id,
        "resourceType": _text(event.resource_type),
        "operationId": str(event.operation_id),
        "operationName": _text(event.operation_name),
        "properties": {key: str(value) for key, value in event.properties.items()},
        "status": _text(event.status),
        "subStatus": _text(event.error["code"] if event.error else ""),
        "eventTimestamp": _iso(event.event_timestamp),
        "submissionTimestamp": _iso(event.event_timestamp),
        "subscriptionId": event.subscription_id,
        "tenantId": tenant_id,
    }
    if event.error:
        body["properties"]["statusMessage"] = event.error.get("message", "")
    if select is not None:
        return {name: body[name] for name in select}
    return body
