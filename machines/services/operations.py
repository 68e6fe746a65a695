"""ARM asynchronous operations of the goal-state channel (``AsyncOperation``): started by an ARM write, ended by the
agent's report, by the deadline, at once when the machine is not Connected, or Canceled with the machine.

The deadline is enforced on read (``operation_refresh``, called by every status poll and every goal-state read), so
an operation ends on time even without beat; nothing polls in the background.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from machines.activity import AGENT_CALLER, PLATFORM_CALLER, operation_recorded
from machines.conf import status_thresholds
from machines.models import AsyncOperation, Extension, Machine, RunCommand
from machines.status import CONNECTED, derive_status

TERMINAL = ("Succeeded", "Failed", "Canceled")
DEFAULT_TIMEOUT_SECONDS = 900


def extension_timeout_seconds() -> int:
    return int(getattr(settings, "ARC_EXTENSION_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def machine_connected(*, machine: Machine, now: datetime | None = None) -> bool:
    """The status rule of DESIGN.md §3, read now (never the stored, maybe stale, status)."""
    moment = now or timezone.now()
    state = derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=moment, thresholds=status_thresholds())
    return state == CONNECTED


def not_connected_error(machine: Machine, now: datetime | None = None) -> dict[str, str]:
    state = derive_status(
        last_heartbeat_at=machine.last_heartbeat_at, now=now or timezone.now(), thresholds=status_thresholds()
    )
    return {
        "code": "MachineNotConnected",
        "message": (
            f"The machine '{machine.name}' is not connected (status {state}): its agent can't carry out the "
            "operation. Connect the agent (azcmagent connect, or start its service) and try again."
        ),
    }


def operation_start(
    *, machine: Machine, resource_id: str, kind: str, name: str, action: str, sequence: int, timeout: int
) -> AsyncOperation:
    now = timezone.now()
    # An operation still running on the same entry is overtaken by this one (its sequence will never be reported).
    AsyncOperation.objects.filter(machine=machine, kind=kind, name=name, status="InProgress").update(
        status="Canceled",
        ended_at=now,
        error={"code": "OperationOvertaken", "message": "A newer operation on this resource replaced this one."},
    )
    operation_recorded(kind=kind, action=action, resource_id=resource_id, status="Started")
    return AsyncOperation.objects.create(
        machine=machine,
        subscription_id=str(machine.resource_group.subscription.subscription_id),
        resource_id=resource_id,
        kind=kind,
        name=name,
        action=action,
        sequence=sequence,
        started_at=now,
        deadline=now + timedelta(seconds=timeout),
    )


def operation_fail_at_once(
    *, machine: Machine, resource_id: str, kind: str, name: str, action: str, error: dict[str, str]
) -> AsyncOperation:
    now = timezone.now()
    operation_recorded(kind=kind, action=action, resource_id=resource_id, status="Failed", error=error)
    return AsyncOperation.objects.create(
        machine=machine,
        subscription_id=str(machine.resource_group.subscription.subscription_id),
        resource_id=resource_id,
        kind=kind,
        name=name,
        action=action,
        status="Failed",
        error=error,
        started_at=now,
        ended_at=now,
        deadline=now,
    )


def operation_finish(
    *, machine: Machine, kind: str, name: str, sequence: int, status: str, error: dict | None = None
) -> int:
    """End the running operation of that entry and sequence (the agent reported); returns how many ended."""
    running = AsyncOperation.objects.filter(
        machine=machine, kind=kind, name=name, sequence=sequence, status="InProgress"
    )
    for resource_id, action in running.values_list("resource_id", "action"):
        operation_recorded(
            kind=kind, action=action, resource_id=resource_id, status=status, caller=AGENT_CALLER, error=error
        )
    return running.update(status=status, ended_at=timezone.now(), error=error or {})


@transaction.atomic
def operation_refresh(*, operation: AsyncOperation, now: datetime | None = None) -> AsyncOperation:
    """The operation as it stands now: a running one past its deadline ends Failed (and so does its resource), one
    whose machine was deleted ends Canceled."""
    if operation.status != "InProgress":
        return operation
    moment = now or timezone.now()
    if operation.machine_id is None:
        operation.status, operation.ended_at = "Canceled", moment
        operation.error = {"code": "MachineDeleted", "message": "The machine was deleted while the operation ran."}
        operation.save(update_fields=["status", "ended_at", "error"])
    elif moment >= operation.deadline:
        operation.status, operation.ended_at = "Failed", moment
        seconds = int((operation.deadline - operation.started_at).total_seconds())
        operation.error = {
            "code": "OperationTimedOut",
            "message": (
                f"The agent did not report the {operation.action} of {operation.kind}/{operation.name} within "
                f"{seconds} seconds (ARC_EXTENSION_TIMEOUT_SECONDS)."
            ),
        }
        operation.save(update_fields=["status", "ended_at", "error"])
        operation_recorded(
            kind=operation.kind,
            action=operation.action,
            resource_id=operation.resource_id,
            status="Failed",
            caller=PLATFORM_CALLER,
            error=operation.error,
        )
        _entry_timed_out(operation, moment)
    return operation


def operations_expire(*, machine: Machine, now: datetime | None = None) -> None:
    """Apply the deadline to every running operation of a machine (a goal-state read does this)."""
    moment = now or timezone.now()
    for operation in AsyncOperation.objects.filter(machine=machine, status="InProgress", deadline__lte=moment):
        operation_refresh(operation=operation, now=moment)


def _entry_timed_out(operation: AsyncOperation, now: datetime) -> None:
    """The resource of a timed-out operation shows it: provisioningState Failed, the reason in its instance view.
    A later report of the same sequence from the agent still updates it (the agent may just have been slow)."""
    model = Extension if operation.kind == "extensions" else RunCommand
    entry = model.objects.filter(machine_id=operation.machine_id, name__iexact_ascii=operation.name).first()
    if entry is None or entry.sequence != operation.sequence or entry.reported_sequence >= operation.sequence:
        return
    entry.provisioning_state = "Failed"
    if isinstance(entry, Extension):
        entry.instance_view = {
            **(entry.instance_view or {}),
            "status": {
                "code": "ProvisioningState/failed",
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": operation.error["message"],
                "time": now.isoformat().replace("+00:00", "Z"),
            },
        }
        entry.save(update_fields=["provisioning_state", "instance_view", "updated_at"])
    else:
        entry.execution_message = operation.error["message"]
        entry.save(update_fields=["provisioning_state", "execution_message", "updated_at"])


OPERATION_RETENTION_DAYS = 7


def async_operations_housekeeping(*, now: datetime | None = None, keep_days: int | None = None) -> tuple[int, int]:
    """Beat's backstop (hourly): end every running operation past its deadline (reads do it too, so this only matters
    for resources nobody looks at), and delete ended operations older than ``ARC_OPERATION_RETENTION_DAYS``
    (default 7: the SDK's pollers are long done). Returns (ended, deleted)."""
    moment = now or timezone.now()
    overdue = list(AsyncOperation.objects.filter(status="InProgress", deadline__lte=moment).order_by("deadline")[:1000])
    overdue += list(AsyncOperation.objects.filter(status="InProgress", machine__isnull=True)[:1000])
    for operation in overdue:
        operation_refresh(operation=operation, now=moment)
    days = keep_days if keep_days is not None else getattr(settings, "ARC_OPERATION_RETENTION_DAYS", 7)
    deleted, _ = AsyncOperation.objects.filter(ended_at__lt=moment - timedelta(days=days)).delete()
    return len(overdue), deleted
