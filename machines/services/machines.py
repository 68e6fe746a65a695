"""Machines through ARM and the portal: create or replace (PUT), update (PATCH), tags, delete.

An agent registering its machine goes through ``machines.services.registration`` (it shares ``machine_upsert``); the
status and heartbeats through ``machines.services.transitions``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from arcportal import activity
from arcportal.arm import ids
from arcportal.exceptions import Conflict, Invalid, NotFound
from identity.role_assignments import role_assignments_forget
from machines import validation
from machines.keys import same_public_key
from machines.locks.enforcement import lock_guard_delete, lock_guard_write
from machines.models import Machine, MachineTag, ResourceGroup
from machines.services.common import Upsert, checked

logger = logging.getLogger("machines.services")

WRITE = "Microsoft.HybridCompute/machines/write"
DELETE = "Microsoft.HybridCompute/machines/delete"
# The agent plane's identity certificate (ArcPortal's own operation: Azure's HIS issues it outside ARM).
CERTIFICATE = "Microsoft.HybridCompute/machines/issueCertificate/action"


def machine_recorded(machine: Machine, operation: str, actor: str = "", **properties: Any) -> None:
    """The activity event of a change to ``machine``, in the transaction of the change."""
    activity.record(
        operation=operation, status="Succeeded", resource_id=machine.arm_id, caller=actor, properties=properties or None
    )


# ARM property name → model field, for the simple string properties a PUT may carry.
MACHINE_STRING_PROPERTIES = {
    "vmId": "vm_id",
    "vmUuid": "vm_uuid",
    "clientPublicKey": "client_public_key",
    "osName": "os_name",
    "osType": "os_type",
    "osVersion": "os_version",
    "osSku": "os_sku",
    "osEdition": "os_edition",
    "displayName": "display_name",
    "machineFqdn": "machine_fqdn",
    "dnsFqdn": "dns_fqdn",
    "adFqdn": "ad_fqdn",
    "domainName": "domain_name",
    "agentVersion": "agent_version",
    "mssqlDiscovered": "mssql_discovered",
}
# Writable ARM sub-objects stored as given (PATCH subset of API-CONTRACT.md §5 plus PUT extras).
MACHINE_EXTRA_PROPERTIES = (
    "locationData",
    "cloudMetadata",
    "agentUpgrade",
    "parentClusterResourceId",
    "privateLinkScopeResourceId",
    "identityKeyStore",
    "tpmEkCertificate",
    "licenseProfile",
    "serviceStatuses",
    "agentConfiguration",
)


def _apply_machine_properties(machine: Machine, properties: Mapping[str, Any]) -> None:
    for arm_name, field in MACHINE_STRING_PROPERTIES.items():
        if arm_name in properties and properties[arm_name] is not None:
            value = properties[arm_name]
            if field == "vm_id":
                try:
                    value = uuid.UUID(str(value))
                except ValueError as exc:
                    raise Invalid(f"properties.vmId '{value}' is not a GUID.", target="properties.vmId") from exc
            elif field == "os_name":
                value = str(value).lower()
            setattr(machine, field, value if field == "vm_id" else str(value))
    os_profile = properties.get("osProfile")
    if isinstance(os_profile, Mapping) and os_profile.get("computerName"):
        machine.computer_name = str(os_profile["computerName"])
    detected = properties.get("detectedProperties")
    if isinstance(detected, Mapping):
        machine.detected_properties = {str(k): str(v) for k, v in detected.items()}
    extra = dict(machine.extra_properties or {})
    for arm_name in MACHINE_EXTRA_PROPERTIES:
        if arm_name in properties:
            extra[arm_name] = properties[arm_name]
    if isinstance(os_profile, Mapping):
        extra["osProfile"] = {k: v for k, v in os_profile.items() if k != "computerName"}
    machine.extra_properties = extra


def machine_set_tags(*, machine: Machine, tags: Mapping[str, str]) -> None:
    """Replace the whole tag set (ARM semantics: ``{}`` clears it)."""
    tags = checked(validation.validate_tags, tags)
    MachineTag.objects.filter(machine=machine).delete()
    MachineTag.objects.bulk_create([MachineTag(machine=machine, key=k, value=v) for k, v in tags.items()])


def _guard_identity(machine: Machine, properties: Mapping[str, Any]) -> None:
    """``clientPublicKey`` and ``vmId`` are the machine's identity: once set, no PUT or PATCH changes or clears
    them (only a registration with a proof of the current key does, ``machine_register``). Sending back the values
    a GET returned is fine."""
    if "clientPublicKey" in properties and machine.client_public_key:
        given = str(properties["clientPublicKey"] or "")
        if given != machine.client_public_key and not same_public_key(given, machine.client_public_key):
            raise Invalid(
                "properties.clientPublicKey can't be changed or cleared: it is the key of the machine's agent. "
                "Re-register from the server that holds the key (azcmagent connect), or delete the machine first.",
                code="PropertyChangeNotAllowed",
                target="properties.clientPublicKey",
            )
    if properties.get("vmId") is not None and machine.vm_id is not None:
        try:
            same = uuid.UUID(str(properties["vmId"])) == machine.vm_id
        except ValueError:
            same = False
        if not same:
            raise Invalid(
                f"properties.vmId can't be changed once set (it is {machine.vm_id}).",
                code="PropertyChangeNotAllowed",
                target="properties.vmId",
            )


@transaction.atomic
def machine_create_or_update(
    *,
    resource_group: ResourceGroup,
    name: str,
    location: str,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
    kind: str | None = None,
    identity_type: str | None = None,
    actor: str = "",
    actor_type: str = "User",
) -> Upsert:
    """ARM PUT of a machine: creates it (no status until its agent's first heartbeat) or replaces its writable
    properties. Tags given replace the set; absent tags stay as they are on update. The agent key and vmId of an
    existing machine can't change here (400 ``PropertyChangeNotAllowed``)."""
    result = machine_upsert(
        resource_group=resource_group,
        name=name,
        location=location,
        tags=tags,
        properties=properties,
        kind=kind,
        identity_type=identity_type,
        actor=actor,
        actor_type=actor_type,
        identity_may_change=False,
    )
    machine_recorded(result.instance, WRITE, actor, created=result.created)
    return result


def machine_upsert(
    *,
    resource_group: ResourceGroup,
    name: str,
    location: str,
    tags: Mapping[str, str] | None,
    properties: Mapping[str, Any] | None,
    kind: str | None,
    identity_type: str | None,
    actor: str,
    actor_type: str,
    identity_may_change: bool,
) -> Upsert:
    name = checked(validation.validate_machine_name, name)
    location = checked(validation.validate_location, location)
    if tags is not None:
        tags = checked(validation.validate_tags, tags)
    lock_guard_write(
        resource_id=ids.machine_id(str(resource_group.subscription.subscription_id), resource_group.name, name)
    )
    properties = properties or {}
    machine = Machine.objects.select_for_update().filter(resource_group=resource_group, name__iexact_ascii=name).first()
    created = machine is None
    if created:
        machine = Machine(resource_group=resource_group, name=name, created_by=actor, created_by_type=actor_type)
    elif not identity_may_change:
        _guard_identity(machine, properties)
    machine.location = location
    if kind is not None:
        machine.kind = kind
    if identity_type is not None:
        machine.identity_type = identity_type
    _apply_machine_properties(machine, properties)
    machine.updated_by = actor
    machine.updated_by_type = actor_type
    if not machine.display_name:
        machine.display_name = machine.name
    vm_id_taken = machine.vm_id and Machine.objects.filter(vm_id=machine.vm_id).exclude(pk=machine.pk).exists()
    if vm_id_taken:
        raise Conflict(f"Another machine already uses vmId {machine.vm_id}.", target="properties.vmId")
    try:
        with transaction.atomic():
            machine.save()
    except IntegrityError as exc:
        raise Conflict(f"A machine named '{name}' already exists in this resource group.") from exc
    if tags is not None:
        machine_set_tags(machine=machine, tags=tags)
    return Upsert(machine, created)


@transaction.atomic
def machine_update(
    *,
    machine: Machine,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
    kind: str | None = None,
    identity_type: str | None = None,
    actor: str = "",
    actor_type: str = "User",
) -> Machine:
    """ARM PATCH: members present replace the stored ones; a ``tags`` member replaces the whole set. The agent key
    and vmId can't change (400 ``PropertyChangeNotAllowed``)."""
    lock_guard_write(resource_id=machine.arm_id)
    if properties:
        _guard_identity(machine, properties)
    if tags is not None:
        machine_set_tags(machine=machine, tags=tags)
    if properties:
        _apply_machine_properties(machine, properties)
    if kind is not None:
        machine.kind = kind
    if identity_type is not None:
        machine.identity_type = identity_type
    machine.updated_by = actor
    machine.updated_by_type = actor_type
    machine.save()
    machine_recorded(machine, WRITE, actor)
    return machine


@transaction.atomic
def machine_update_tags(*, machine: Machine, tags: Mapping[str, str]) -> Machine:
    lock_guard_write(resource_id=machine.arm_id)
    machine_set_tags(machine=machine, tags=tags)
    machine.save(update_fields=["updated_at"])
    machine_recorded(machine, WRITE, tags=len(tags))
    return machine


@transaction.atomic
def machines_assign_tags(*, machines: Iterable[Machine], tags: Mapping[str, str]) -> int:
    """Merge ``tags`` into each machine's set (the list page's *Assign tags*); all or nothing."""
    tags = checked(validation.validate_tags, tags)
    count = 0
    for machine in machines:
        lock_guard_write(resource_id=machine.arm_id)
        merged = {t.key: t.value for t in machine.tag_set.all()}
        for key, value in tags.items():
            for existing in [k for k in merged if k.casefold() == key.casefold()]:
                del merged[existing]
            merged[key] = value
        machine_set_tags(machine=machine, tags=merged)
        machine_recorded(machine, WRITE, assignedTags=sorted(tags))
        count += 1
    return count


@transaction.atomic
def machine_delete(*, machine: Machine, actor: str = "", actor_type: str = "User") -> None:
    """Delete a machine and its extensions. Logged with who did it: deleting is how a principal allowed to delete
    frees a name whose agent key is lost, so the next registration starts a new identity."""
    arm_id, vm_id = machine.arm_id, machine.vm_id
    lock_guard_delete(resource_id=arm_id)
    role_assignments_forget(scopes=[arm_id], principal_ids=[machine.identity_principal_id])
    machine.delete()
    activity.record(operation=DELETE, status="Succeeded", resource_id=arm_id, caller=actor)
    logger.info("machine %s (vmId %s) deleted by %s (%s)", arm_id, vm_id, actor or "-", actor_type)


@transaction.atomic
def machines_delete(*, machine_ids: Iterable[int], actor: str = "", actor_type: str = "User") -> int:
    chosen = Machine.objects.filter(pk__in=list(machine_ids)).select_related("resource_group__subscription")
    gone = [(m.arm_id, m.vm_id) for m in chosen]
    for arm_id, _vm_id in gone:
        lock_guard_delete(resource_id=arm_id)
    role_assignments_forget(
        scopes=[arm_id for arm_id, _ in gone], principal_ids=[m.identity_principal_id for m in chosen]
    )
    deleted, _ = chosen.delete()
    for arm_id, vm_id in gone:
        activity.record(operation=DELETE, status="Succeeded", resource_id=arm_id, caller=actor)
        logger.info("machine %s (vmId %s) deleted by %s (%s)", arm_id, vm_id, actor or "-", actor_type)
    return deleted


def machine_get_by_name(*, resource_group: ResourceGroup, name: str) -> Machine:
    machine = Machine.objects.filter(resource_group=resource_group, name__iexact_ascii=name).first()
    if machine is None:
        raise NotFound(
            f"The Resource '{ids.MACHINE_TYPE}/{name}' under resource group '{resource_group.name}' was not found."
        )
    return machine
