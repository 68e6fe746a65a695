"""What machines adds to the activity log beyond its services' own ``record()`` calls: status transitions.

Every transition the heartbeat or the sweep records (``machines.services.transitions``) is mirrored as one activity
event in the same transaction, category ``ResourceHealth``, at the exact transition time, caller
``Microsoft.HybridCompute`` (the platform, not a principal). ``MachineStatusEvent`` stays the status engine's own
record (webhooks, the Overview's timeline); the mirror is one extra bulk INSERT per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from arcportal.activity.services import activity_record_many
from arcportal.arm import ids
from machines.models import Machine

STATUS_OPERATION = "Microsoft.HybridCompute/machines/status/action"
PLATFORM_CALLER = "Microsoft.HybridCompute"
WARNING_STATUSES = frozenset({"Disconnected", "Expired"})


def status_events_mirror(events: Sequence) -> int:
    """``events``: ``transitions.StatusEventRow`` items (machine_id, from_status, to_status, at, reason)."""
    if not events:
        return 0
    names = {
        pk: ids.machine_id(str(sub), group, name)
        for pk, sub, group, name in Machine.objects.filter(pk__in={e.machine_id for e in events}).values_list(
            "pk", "resource_group__subscription__subscription_id", "resource_group__name", "name"
        )
    }
    return activity_record_many(
        [
            {
                "operation": STATUS_OPERATION,
                "status": "Succeeded",
                "resource_id": names[event.machine_id],
                "caller": PLATFORM_CALLER,
                "category": "ResourceHealth",
                "level": "Warning" if event.to_status in WARNING_STATUSES else "Informational",
                "at": event.at,
                "properties": {"fromStatus": event.from_status, "toStatus": event.to_status, "reason": event.reason},
            }
            for event in events
            if event.machine_id in names
        ]
    )
