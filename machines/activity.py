"""What machines adds to the activity log beyond its services' own ``record()`` calls: status transitions.

Every transition the heartbeat or the sweep records (``machines.services.transitions``) is mirrored as one activity
event in the same transaction, category ``ResourceHealth``, at the exact transition time, caller
``Microsoft.HybridCompute`` (the platform, not a principal). ``MachineStatusEvent`` stays the status engine's own
record (webhooks, the Overview's timeline); the mirror is one extra bulk INSERT per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from arcportal import activity
from arcportal.activity.services import activity_record_many
from arcportal.arm import ids
from machines.models import Machine

STATUS_OPERATION = "Microsoft.HybridCompute/machines/status/action"
PLATFORM_CALLER = "Microsoft.HybridCompute"
# The machine's agent reporting an operation's result (Azure shows the Arc agent's own identity here).
AGENT_CALLER = "Microsoft.HybridCompute agent"
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


def operation_recorded(
    *, kind: str, action: str, resource_id: str, status: str, caller: str = "", error: dict | None = None
) -> None:
    """One step of an extension or run-command operation (``machines.services.operations``): ``Started`` when it is
    handed to the agent, ``Succeeded``/``Failed`` when the agent reports or the deadline passes. Azure's operation
    names: ``…/machines/extensions/write|delete``, ``…/machines/runCommands/write|delete``."""
    verb = "delete" if action == "delete" else "write"
    activity.record(
        operation=f"Microsoft.HybridCompute/machines/{kind}/{verb}",
        status=status,
        resource_id=resource_id,
        caller=caller,
        properties={"action": action},
        error=error or None,
    )
