"""Run commands (``Microsoft.HybridCompute/machines/runCommands``): every PUT is a new run the agent carries out
over the goal-state channel; its reports fill the instance view. protectedParameters are encrypted at rest.

The ARM operation of a PUT ends when the agent reports a terminal state (or ``Running`` with ``asyncExecution``):
provisioningState ``Succeeded`` whatever the script's outcome (``instanceView.executionState`` says it, as Azure's
default ``treatFailureAsDeploymentFailure: false``), ``Failed`` when the agent restarted mid-run (``Unknown``), the
deadline passed, or the machine is not Connected. DELETE removes the run's files on the machine (the agent reports
``Canceled``) and then the row; a run no agent was given, or on a machine that is not Connected, is removed at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arcportal.crypto import decrypt_text, encrypt_text
from arcportal.exceptions import Conflict
from machines import validation
from machines.locks.enforcement import lock_guard_delete, lock_guard_write
from machines.models import Machine, RunCommand
from machines.services.common import checked
from machines.services.extensions import ExtensionWrite, _entry_for_report
from machines.services.operations import (
    extension_timeout_seconds,
    machine_connected,
    not_connected_error,
    operation_fail_at_once,
    operation_finish,
    operation_start,
)

KIND = "runCommands"
TERMINAL = ("Succeeded", "Failed", "TimedOut", "Canceled", "Unknown")
DEFAULT_SCRIPT_TIMEOUT_SECONDS = 5400  # the agent's default for timeoutInSeconds 0


def run_command_protected_parameters(*, run_command: RunCommand) -> list[dict[str, str]]:
    """The decrypted protectedParameters, for the agent plane only."""
    if not run_command.protected_parameters_encrypted:
        return []
    return json.loads(decrypt_text(run_command.protected_parameters_encrypted))


def _parameters(value) -> list[dict[str, str]]:
    return [{"name": str(p["name"]), "value": "" if p.get("value") is None else str(p["value"])} for p in value or []]


def _apply(run_command: RunCommand, properties: Mapping[str, Any]) -> None:
    source = properties.get("source") or {}
    run_command.script = source.get("script") or ""
    run_command.script_uri = source.get("scriptUri") or ""
    run_command.command_id = source.get("commandId") or ""
    run_command.parameters = _parameters(properties.get("parameters"))
    protected = _parameters(properties.get("protectedParameters"))
    run_command.protected_parameters_encrypted = (
        encrypt_text(json.dumps(protected, separators=(",", ":"))) if protected else ""
    )
    run_command.run_as_user = properties.get("runAsUser") or ""  # runAsPassword is never stored
    run_command.async_execution = bool(properties.get("asyncExecution") or False)
    run_command.timeout_in_seconds = int(properties.get("timeoutInSeconds") or 0)
    run_command.output_blob_uri = properties.get("outputBlobUri") or ""
    run_command.error_blob_uri = properties.get("errorBlobUri") or ""
    run_command.execution_state, run_command.execution_message = "Pending", ""
    run_command.exit_code, run_command.output, run_command.error = None, "", ""
    run_command.start_time = run_command.end_time = None


def _deadline_seconds(run_command: RunCommand) -> int:
    script = run_command.timeout_in_seconds or DEFAULT_SCRIPT_TIMEOUT_SECONDS
    return script + extension_timeout_seconds()


@transaction.atomic
def run_command_create_or_update(
    *,
    machine: Machine,
    name: str,
    location: str | None = None,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
    actor: str = "",
) -> ExtensionWrite:
    """ARM PUT of a run command: a new run of the script on the machine."""
    name = checked(validation.validate_extension_name, name)
    lock_guard_write(resource_id=machine.arm_id)
    location = checked(validation.validate_location, location) if location else machine.location
    run_command = RunCommand.objects.select_for_update().filter(machine=machine, name__iexact_ascii=name).first()
    created = run_command is None
    if created:
        run_command = RunCommand(machine=machine, name=name)
    run_command.location = location
    if tags is not None:
        run_command.tags = checked(validation.validate_tags, tags)
    _apply(run_command, properties or {})
    run_command.created_by = actor[:200]
    if machine_connected(machine=machine):
        run_command.sequence += 1
        run_command.operation = "run"
        run_command.provisioning_state = "Creating" if created else "Updating"
        operation = None  # started after the save (the row needs its final name)
    else:
        error = not_connected_error(machine)
        run_command.provisioning_state, run_command.execution_state = "Failed", "Failed"
        run_command.execution_message = error["message"]
        operation = operation_fail_at_once(
            machine=machine, resource_id=run_command.arm_id, kind=KIND, name=name, action="run", error=error
        )
    try:
        with transaction.atomic():
            run_command.save()
    except IntegrityError as exc:
        raise Conflict(f"A run command named '{name}' already exists on this machine.") from exc
    if operation is None:
        operation = operation_start(
            machine=machine,
            resource_id=run_command.arm_id,
            kind=KIND,
            name=run_command.name,
            action="run",
            sequence=run_command.sequence,
            timeout=_deadline_seconds(run_command),
        )
    return ExtensionWrite(run_command, created, operation)


@transaction.atomic
def run_command_delete(*, run_command: RunCommand) -> ExtensionWrite:
    machine = run_command.machine
    lock_guard_delete(resource_id=machine.arm_id)  # a lock on the machine or above covers its run commands
    if run_command.sequence == 0 or not machine_connected(machine=machine):
        run_command.delete()
        return ExtensionWrite(None, False, None)
    run_command.sequence += 1
    run_command.operation = "delete"
    run_command.provisioning_state = "Deleting"
    run_command.save()
    operation = operation_start(
        machine=machine,
        resource_id=run_command.arm_id,
        kind=KIND,
        name=run_command.name,
        action="delete",
        sequence=run_command.sequence,
        timeout=extension_timeout_seconds(),
    )
    return ExtensionWrite(run_command, False, operation)


def _moment(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


@transaction.atomic
def run_command_report_record(*, machine: Machine, name: str, report: Mapping[str, Any]) -> RunCommand | None:
    """The agent's report of a run (validated by the agent plane). A terminal report of a delete removes the row."""
    sequence = int(report["sequence"])
    run_command = _entry_for_report(RunCommand, machine, name, sequence)
    state = report["executionState"]
    if run_command.operation == "delete":
        if state in TERMINAL:
            operation_finish(machine=machine, kind=KIND, name=run_command.name, sequence=sequence, status="Succeeded")
            run_command.delete()
            return None
        return run_command
    run_command.execution_state = state
    run_command.execution_message = report.get("executionMessage") or ""
    run_command.exit_code = report.get("exitCode")
    run_command.output = report.get("output") or ""
    run_command.error = report.get("error") or ""
    run_command.start_time = _moment(report.get("startTime")) or run_command.start_time or timezone.now()
    run_command.end_time = _moment(report.get("endTime")) if state in TERMINAL else None
    if state in TERMINAL:
        run_command.reported_sequence = sequence
        failed = state == "Unknown"
        run_command.provisioning_state = "Failed" if failed else "Succeeded"
        error = {"code": "RunCommandOutcomeUnknown", "message": run_command.execution_message} if failed else None
        operation_finish(
            machine=machine, kind=KIND, name=run_command.name, sequence=sequence,
            status=run_command.provisioning_state, error=error,
        )  # fmt: skip
    elif run_command.async_execution:
        run_command.provisioning_state = "Succeeded"
        operation_finish(machine=machine, kind=KIND, name=run_command.name, sequence=sequence, status="Succeeded")
    run_command.save()
    return run_command
