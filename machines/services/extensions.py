"""Machine extensions: the ARM writes start an operation the agent carries out over the goal-state channel
(docs/extensions.md "The portal's half"); the agent's reports end it. protectedSettings are encrypted at rest.

* PUT/PATCH on a Connected machine: the desired state is recorded, ``sequence`` goes up, ``operation`` is
  ``install``/``update``, provisioningState ``Creating``/``Updating`` until the agent reports ``Succeeded``/``Failed``.
* DELETE: ``operation`` ``delete``, provisioningState ``Deleting``; the row goes when the agent reports ``Deleted``.
  An extension no agent was ever given (``sequence`` 0) is deleted at once.
* On a machine that is not Connected the write is recorded but not handed over: Failed at once, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from arcportal.crypto import decrypt_text, encrypt_text
from arcportal.exceptions import Conflict, NotFound
from machines import validation
from machines.locks.enforcement import lock_guard_delete, lock_guard_write
from machines.models import AsyncOperation, Extension, Machine
from machines.services.common import checked
from machines.services.operations import (
    extension_timeout_seconds,
    machine_connected,
    not_connected_error,
    operation_fail_at_once,
    operation_finish,
    operation_start,
)

KIND = "extensions"
EXTENSION_PROPERTIES = {
    "publisher": "publisher",
    "type": "type",
    "typeHandlerVersion": "type_handler_version",
    "autoUpgradeMinorVersion": "auto_upgrade_minor_version",
    "enableAutomaticUpgrade": "enable_automatic_upgrade",
    "forceUpdateTag": "force_update_tag",
    "settings": "settings",
}
PENDING_STATES = {"install": "Creating", "update": "Updating", "delete": "Deleting"}


@dataclass(frozen=True)
class ExtensionWrite:
    """What an ARM write did: the extension (None when deleted at once), whether it was created, and the
    asynchronous operation (None when nothing was handed to an agent)."""

    instance: Extension | None
    created: bool
    operation: AsyncOperation | None


def extension_protected_settings_encrypt(value: Mapping[str, Any] | None) -> str:
    """Fernet ciphertext of the protectedSettings JSON (``arcportal.crypto``); ``""`` when there are none."""
    if not value:
        return ""
    return encrypt_text(json.dumps(dict(value), separators=(",", ":")))


def extension_protected_settings(*, extension) -> dict[str, Any]:
    """The decrypted protectedSettings, for the agent plane only: no ARM response ever carries them."""
    if not extension.protected_settings_encrypted:
        return {}
    return json.loads(decrypt_text(extension.protected_settings_encrypted))


def _apply_extension_properties(extension, properties: Mapping[str, Any]) -> None:
    for arm_name, field in EXTENSION_PROPERTIES.items():
        if arm_name in properties:
            value = properties[arm_name]
            if field in ("auto_upgrade_minor_version", "enable_automatic_upgrade"):
                value = None if value is None else bool(value)
            elif field == "settings":
                value = dict(value or {})
            else:
                value = "" if value is None else str(value)
            setattr(extension, field, value)
    if "protectedSettings" in properties:
        extension.protected_settings_encrypted = extension_protected_settings_encrypt(properties["protectedSettings"])


def _failed_view(extension: Extension, error: dict[str, str]) -> dict[str, Any]:
    from django.utils import timezone

    return {
        "name": extension.name,
        "type": extension.type,
        "typeHandlerVersion": extension.type_handler_version,
        "status": {
            "code": "ProvisioningState/failed",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": error["message"],
            "time": timezone.now().isoformat().replace("+00:00", "Z"),
        },
    }


def _hand_over(extension: Extension, action: str) -> AsyncOperation:
    """Record ``action`` for the agent (the caller saves the extension), or fail it at once if it can't be."""
    machine = extension.machine
    if not machine_connected(machine=machine):
        error = not_connected_error(machine)
        extension.provisioning_state = "Failed"
        extension.instance_view = _failed_view(extension, error)
        return operation_fail_at_once(
            machine=machine, resource_id=extension.arm_id, kind=KIND, name=extension.name, action=action, error=error
        )
    extension.sequence += 1
    extension.operation = action
    extension.provisioning_state = PENDING_STATES[action]
    return operation_start(
        machine=machine,
        resource_id=extension.arm_id,
        kind=KIND,
        name=extension.name,
        action=action,
        sequence=extension.sequence,
        timeout=extension_timeout_seconds(),
    )


@transaction.atomic
def extension_create_or_update(
    *,
    machine: Machine,
    name: str,
    location: str | None = None,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> ExtensionWrite:
    """ARM PUT of an extension: install (new, or after a delete) or update, carried out by the agent."""
    name = checked(validation.validate_extension_name, name)
    lock_guard_write(resource_id=machine.arm_id)
    location = checked(validation.validate_location, location) if location else machine.location
    tags = checked(validation.validate_tags, tags) if tags is not None else None
    extension = Extension.objects.select_for_update().filter(machine=machine, name__iexact_ascii=name).first()
    created = extension is None
    if created:
        extension = Extension(machine=machine, name=name, provisioning_state="Creating")
    extension.location = location
    if tags is not None:
        extension.tags = tags
    _apply_extension_properties(extension, properties or {})
    installed = not created and extension.sequence > 0 and extension.operation != "delete"
    operation = _hand_over(extension, "update" if installed else "install")
    try:
        with transaction.atomic():
            extension.save()
    except IntegrityError as exc:
        raise Conflict(f"An extension named '{name}' already exists on this machine.") from exc
    return ExtensionWrite(extension, created, operation)


@transaction.atomic
def extension_update(
    *, extension, tags: Mapping[str, str] | None = None, properties: Mapping[str, Any] | None = None
) -> ExtensionWrite:
    """ARM PATCH: members present replace the stored ones (``settings`` as a whole object); the agent updates."""
    lock_guard_write(resource_id=extension.machine.arm_id)
    if tags is not None:
        extension.tags = checked(validation.validate_tags, tags)
    _apply_extension_properties(extension, properties or {})
    installed = extension.sequence > 0 and extension.operation != "delete"
    operation = _hand_over(extension, "update" if installed else "install")
    extension.save()
    return ExtensionWrite(extension, False, operation)


@transaction.atomic
def extension_delete(*, extension) -> ExtensionWrite:
    """ARM DELETE: the agent uninstalls, then the row goes; never handed to an agent → deleted at once."""
    lock_guard_delete(resource_id=f"{extension.machine.arm_id}/extensions/{extension.name}")
    if extension.sequence == 0:
        extension.delete()
        return ExtensionWrite(None, False, None)
    operation = _hand_over(extension, "delete")
    extension.save()
    return ExtensionWrite(extension, False, operation)


# --- the agent's reports ------------------------------------------------------------------------------------


class StaleSequence(Conflict):
    code = "StaleSequence"


def _entry_for_report(model, machine: Machine, name: str, sequence: int):
    entry = model.objects.select_for_update().filter(machine=machine, name__iexact_ascii=name).first()
    if entry is None:
        raise NotFound(f"This machine has no {model._meta.verbose_name} named '{name}'.", code="NotFound")
    if sequence != entry.sequence or entry.reported_sequence >= sequence:
        raise StaleSequence(
            f"The report is for sequence {sequence}; the current operation of '{entry.name}' is sequence "
            f"{entry.sequence}{' (already reported)' if entry.reported_sequence >= entry.sequence else ''}."
        )
    return entry


@transaction.atomic
def extension_report_record(*, machine: Machine, name: str, report: Mapping[str, Any]) -> Extension | None:
    """The agent's status report of one extension (already validated by the agent plane): progress updates the
    instance view; a terminal state ends the operation. ``Deleted`` removes the row (returns None)."""
    sequence = int(report["sequence"])
    extension = _entry_for_report(Extension, machine, name, sequence)
    state = report["state"]
    extension.instance_view = {
        "name": extension.name,
        "type": extension.type,
        "typeHandlerVersion": report.get("handlerVersion") or extension.type_handler_version,
        "status": dict(report["status"]),
    }
    extension.last_report = dict(report)
    if state == "Transitioning":
        extension.save(update_fields=["instance_view", "last_report", "updated_at"])
        return extension
    extension.reported_sequence = sequence
    if state == "Deleted":
        operation_finish(machine=machine, kind=KIND, name=extension.name, sequence=sequence, status="Succeeded")
        extension.delete()
        return None
    extension.provisioning_state = "Succeeded" if state == "Succeeded" else "Failed"
    error = None
    if state == "Failed":
        error = {"code": "ExtensionOperationFailed", "message": report["status"].get("message") or "Failed."}
    operation_finish(
        machine=machine, kind=KIND, name=extension.name, sequence=sequence, status=extension.provisioning_state,
        error=error,
    )  # fmt: skip
    extension.save()
    return extension
