"""Every state change of subscriptions, resource groups, machines, tags, statuses and extensions, by sub-domain.

Services are keyword-only, typed, atomic, and raise ``arcportal.exceptions.ApplicationError`` subclasses. Views, the
ARM API, the agent plane and tasks all write through here (``from machines import services`` or
``from machines.services import …``). Inside the package a module imports its siblings directly, never this one.

* ``subscriptions`` — the default subscription.
* ``resource_groups`` — create (ARM PUT), tags, delete.
* ``machines`` — create or replace, update, tags, delete.
* ``registration`` — an agent registers its machine and gets its identity certificate.
* ``transitions`` — the one writer of status transitions (heartbeats and the sweep).
* ``extensions`` — machine extensions, carried out by the agent (goal state); its reports.
* ``runcommands`` — run commands, carried out by the agent; its reports.
* ``operations`` — the ARM asynchronous operations of both (deadline, not-connected, machine deleted).
"""

from machines.services.common import Upsert
from machines.services.extensions import (
    ExtensionWrite,
    extension_create_or_update,
    extension_delete,
    extension_protected_settings,
    extension_protected_settings_encrypt,
    extension_report_record,
    extension_update,
)
from machines.services.machines import (
    machine_create_or_update,
    machine_delete,
    machine_get_by_name,
    machine_set_tags,
    machine_update,
    machine_update_tags,
    machines_assign_tags,
    machines_delete,
)
from machines.services.operations import machine_connected, operation_refresh, operations_expire
from machines.services.registration import MachineCertificate, machine_issue_certificate, machine_register
from machines.services.resource_groups import (
    resource_group_create,
    resource_group_create_or_update,
    resource_group_delete,
    resource_group_update_tags,
)
from machines.services.runcommands import (
    run_command_create_or_update,
    run_command_delete,
    run_command_protected_parameters,
    run_command_report_record,
)
from machines.services.subscriptions import subscription_ensure_default
from machines.services.transitions import SweepResult, machine_record_heartbeat, machine_status_sweep

__all__ = [
    "ExtensionWrite",
    "MachineCertificate",
    "SweepResult",
    "Upsert",
    "extension_create_or_update",
    "extension_delete",
    "extension_protected_settings",
    "extension_protected_settings_encrypt",
    "extension_report_record",
    "extension_update",
    "machine_connected",
    "machine_create_or_update",
    "machine_delete",
    "machine_get_by_name",
    "machine_issue_certificate",
    "machine_record_heartbeat",
    "machine_register",
    "machine_set_tags",
    "machine_status_sweep",
    "machine_update",
    "machine_update_tags",
    "machines_assign_tags",
    "machines_delete",
    "operation_refresh",
    "operations_expire",
    "resource_group_create",
    "resource_group_create_or_update",
    "resource_group_delete",
    "resource_group_update_tags",
    "run_command_create_or_update",
    "run_command_delete",
    "run_command_protected_parameters",
    "run_command_report_record",
    "subscription_ensure_default",
]
