"""Machine extensions on the ARM plane: desired state (PUT/PATCH/DELETE), protectedSettings encrypted at rest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from arcportal.crypto import decrypt_text, encrypt_text
from arcportal.exceptions import Conflict
from machines import validation
from machines.locks.enforcement import lock_guard_delete, lock_guard_write
from machines.models import Extension, Machine
from machines.services.common import Upsert, checked

EXTENSION_PROPERTIES = {
    "publisher": "publisher",
    "type": "type",
    "typeHandlerVersion": "type_handler_version",
    "autoUpgradeMinorVersion": "auto_upgrade_minor_version",
    "enableAutomaticUpgrade": "enable_automatic_upgrade",
    "forceUpdateTag": "force_update_tag",
    "settings": "settings",
}


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


@transaction.atomic
def extension_create_or_update(
    *,
    machine: Machine,
    name: str,
    location: str | None = None,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> Upsert:
    """ARM PUT of an extension: records the desired state and reports it ``Succeeded`` at once (the ARM
    operation is done; the agent reports its progress separately in ``instance_view``)."""
    name = checked(validation.validate_extension_name, name)
    lock_guard_write(resource_id=machine.arm_id)
    location = checked(validation.validate_location, location) if location else machine.location
    tags = checked(validation.validate_tags, tags) if tags is not None else None
    extension = Extension.objects.select_for_update().filter(machine=machine, name__iexact_ascii=name).first()
    created = extension is None
    if created:
        extension = Extension(machine=machine, name=name)
    extension.location = location
    if tags is not None:
        extension.tags = tags
    _apply_extension_properties(extension, properties or {})
    extension.provisioning_state = "Succeeded"
    try:
        with transaction.atomic():
            extension.save()
    except IntegrityError as exc:
        raise Conflict(f"An extension named '{name}' already exists on this machine.") from exc
    return Upsert(extension, created)


@transaction.atomic
def extension_update(*, extension, tags: Mapping[str, str] | None = None, properties: Mapping[str, Any] | None = None):
    """ARM PATCH of an extension: members present replace the stored ones (``settings`` as a whole object)."""
    lock_guard_write(resource_id=extension.machine.arm_id)
    if tags is not None:
        extension.tags = checked(validation.validate_tags, tags)
    _apply_extension_properties(extension, properties or {})
    extension.provisioning_state = "Succeeded"
    extension.save()
    return extension


@transaction.atomic
def extension_delete(*, extension) -> None:
    lock_guard_delete(resource_id=f"{extension.machine.arm_id}/extensions/{extension.name}")
    extension.delete()
