"""Every state change of tenants, subscriptions, resource groups, machines, tags and statuses.

Services are keyword-only, typed, atomic, and raise ``arcportal.exceptions.ApplicationError`` subclasses.
Views, the ARM API, the agent plane and tasks all write through here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from arcportal.exceptions import Conflict, Invalid, NotFound
from machines import keyproof, sweep, validation
from machines import status as rules
from machines.conf import status_thresholds
from machines.keyproof import KeyProof
from machines.models import Machine, MachineStatusEvent, MachineTag, ResourceGroup, Subscription
from machines.webhooks import webhook_deliveries_create

logger = logging.getLogger(__name__)

SWEEP_CHUNK = 5000


def _check(func, *args):
    try:
        return func(*args)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


# --- Tenant and subscriptions --------------------------------------------------------------------------------


@transaction.atomic
def subscription_ensure_default(*, tenant, display_name: str = "Arc Subscription") -> Subscription:
    existing = Subscription.objects.filter(tenant=tenant).order_by("id").first()
    if existing:
        return existing
    return Subscription.objects.create(tenant=tenant, display_name=display_name)


# --- Resource groups -----------------------------------------------------------------------------------------


@transaction.atomic
def resource_group_create(
    *, subscription: Subscription, name: str, location: str, tags: Mapping[str, str] | None = None
) -> ResourceGroup:
    name = _check(validation.validate_resource_group_name, name)
    location = _check(validation.validate_location, location)
    tags = _check(validation.validate_tags, tags)
    if ResourceGroup.objects.filter(subscription=subscription, name__iexact_ascii=name).exists():
        raise Conflict(f"A resource group named '{name}' already exists.", code="ResourceGroupExists")
    try:
        with transaction.atomic():
            return ResourceGroup.objects.create(subscription=subscription, name=name, location=location, tags=tags)
    except IntegrityError as exc:
        raise Conflict(f"A resource group named '{name}' already exists.", code="ResourceGroupExists") from exc


@dataclass(frozen=True)
class Upsert:
    instance: Any
    created: bool


@transaction.atomic
def resource_group_create_or_update(
    *,
    subscription: Subscription,
    name: str,
    location: str,
    tags: Mapping[str, str] | None = None,
    managed_by: str = "",
) -> Upsert:
    """ARM PUT semantics: create, or replace tags of an existing group; the location can't change."""
    name = _check(validation.validate_resource_group_name, name)
    location = _check(validation.validate_location, location)
    tags = _check(validation.validate_tags, tags)
    existing = (
        ResourceGroup.objects.select_for_update().filter(subscription=subscription, name__iexact_ascii=name).first()
    )
    if existing is None:
        group = resource_group_create(subscription=subscription, name=name, location=location, tags=tags)
        if managed_by:
            group.managed_by = managed_by
            group.save(update_fields=["managed_by"])
        return Upsert(group, True)
    if existing.location != location:
        raise Conflict(
            f"Invalid resource group location '{location}'. The Resource group already exists in location "
            f"'{existing.location}'.",
            code="InvalidResourceGroupLocation",
        )
    existing.tags = tags
    existing.managed_by = managed_by or existing.managed_by
    existing.save(update_fields=["tags", "managed_by", "updated_at"])
    return Upsert(existing, False)


@transaction.atomic
def resource_group_update_tags(*, resource_group: ResourceGroup, tags: Mapping[str, str]) -> ResourceGroup:
    resource_group.tags = _check(validation.validate_tags, tags)
    resource_group.save(update_fields=["tags", "updated_at"])
    return resource_group


@transaction.atomic
def resource_group_delete(*, resource_group: ResourceGroup, actor: str = "", actor_type: str = "User") -> int:
    """Delete a group and, as Azure does, every machine and extension in it. Returns the machines deleted. Logged
    with who did it, like ``machine_delete``."""
    machine_count = resource_group.machines.count()
    arm_id = resource_group.arm_id
    resource_group.delete()
    logger.info(
        "resource group %s deleted with its %d machines by %s (%s)", arm_id, machine_count, actor or "-", actor_type
    )
    return machine_count


# --- Machines ------------------------------------------------------------------------------------------------

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
    tags = _check(validation.validate_tags, tags)
    MachineTag.objects.filter(machine=machine).delete()
    MachineTag.objects.bulk_create([MachineTag(machine=machine, key=k, value=v) for k, v in tags.items()])


def _guard_identity(machine: Machine, properties: Mapping[str, Any]) -> None:
    """``clientPublicKey`` and ``vmId`` are the machine's identity: once set, no PUT or PATCH changes or clears
    them (only a registration with a proof of the current key does, ``machine_register``). Sending back the values
    a GET returned is fine."""
    if "clientPublicKey" in properties and machine.client_public_key:
        given = str(properties["clientPublicKey"] or "")
        if given != machine.client_public_key and not _same_public_key(given, machine.client_public_key):
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
    return _machine_upsert(
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


def _machine_upsert(
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
    name = _check(validation.validate_machine_name, name)
    location = _check(validation.validate_location, location)
    if tags is not None:
        tags = _check(validation.validate_tags, tags)
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
    return machine


@transaction.atomic
def machine_update_tags(*, machine: Machine, tags: Mapping[str, str]) -> Machine:
    machine_set_tags(machine=machine, tags=tags)
    machine.save(update_fields=["updated_at"])
    return machine


@transaction.atomic
def machines_assign_tags(*, machines: Iterable[Machine], tags: Mapping[str, str]) -> int:
    """Merge ``tags`` into each machine's set (the list page's *Assign tags*); all or nothing."""
    tags = _check(validation.validate_tags, tags)
    count = 0
    for machine in machines:
        merged = {t.key: t.value for t in machine.tag_set.all()}
        for key, value in tags.items():
            for existing in [k for k in merged if k.casefold() == key.casefold()]:
                del merged[existing]
            merged[key] = value
        machine_set_tags(machine=machine, tags=merged)
        count += 1
    return count


@transaction.atomic
def machine_delete(*, machine: Machine, actor: str = "", actor_type: str = "User") -> None:
    """Delete a machine and its extensions. Logged with who did it: deleting is how a principal allowed to delete
    frees a name whose agent key is lost, so the next registration starts a new identity."""
    arm_id, vm_id = machine.arm_id, machine.vm_id
    machine.delete()
    logger.info("machine %s (vmId %s) deleted by %s (%s)", arm_id, vm_id, actor or "-", actor_type)


@transaction.atomic
def machines_delete(*, machine_ids: Iterable[int], actor: str = "", actor_type: str = "User") -> int:
    chosen = Machine.objects.filter(pk__in=list(machine_ids)).select_related("resource_group__subscription")
    gone = [(m.arm_id, m.vm_id) for m in chosen]
    deleted, _ = chosen.delete()
    for arm_id, vm_id in gone:
        logger.info("machine %s (vmId %s) deleted by %s (%s)", arm_id, vm_id, actor or "-", actor_type)
    return deleted


def machine_get_by_name(*, resource_group: ResourceGroup, name: str) -> Machine:
    machine = Machine.objects.filter(resource_group=resource_group, name__iexact_ascii=name).first()
    if machine is None:
        raise NotFound(
            f"The Resource 'Microsoft.HybridCompute/machines/{name}' under resource group "
            f"'{resource_group.name}' was not found."
        )
    return machine


# --- Heartbeats and status -----------------------------------------------------------------------------------


@transaction.atomic
def machine_record_heartbeat(*, machine_id: int, at: datetime, facts: Mapping[str, Any] | None = None) -> str:
    """Record a heartbeat with one UPDATE; if the machine was not Connected, record that transition at once.

    Returns the machine's status after the heartbeat (always Connected).
    """
    facts = dict(facts or {})
    previous = Machine.objects.select_for_update().filter(pk=machine_id).values_list("status", flat=True).first()
    if previous is None:
        raise NotFound("The machine no longer exists.")
    update: dict[str, Any] = {"last_heartbeat_at": at, **facts}
    if previous != rules.CONNECTED:
        update.update(status=rules.CONNECTED, last_status_change=at)
        event = MachineStatusEvent.objects.create(
            machine_id=machine_id, from_status=previous, to_status=rules.CONNECTED, at=at, reason="Heartbeat"
        )
        webhook_deliveries_create(events=[event])
    Machine.objects.filter(pk=machine_id).update(**update)
    return rules.CONNECTED


@dataclass(frozen=True)
class SweepResult:
    transitions: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.transitions.values())


def machine_status_sweep(*, now: datetime) -> SweepResult:
    """Recompute every machine's status at ``now`` and record each transition (DESIGN.md §3, ``machines.sweep``).

    Per target status, due machines are claimed in chunks of ``SWEEP_CHUNK`` (``FOR UPDATE SKIP LOCKED`` where the
    database has row locks, so overlapping sweeps take disjoint rows); each chunk updates ``status`` and
    ``last_status_change`` (the exact transition time), inserts one event per machine, creates the webhook
    deliveries and commits on its own, and the deliveries are enqueued only after that commit. A sweep killed
    mid-way leaves whole chunks done and the rest for the next sweep. Cost grows with the transitions.
    """
    thresholds = status_thresholds()
    done: dict[str, int] = {}
    for step in sweep.sweep_steps(now=now, thresholds=thresholds):
        count = 0
        while True:
            with transaction.atomic():
                events = sweep.sweep_chunk(step, limit=SWEEP_CHUNK)
                if events:
                    webhook_deliveries_create(events=events)
            count += len(events)
            if len(events) < SWEEP_CHUNK:
                break
        done[step.target] = done.get(step.target, 0) + count
    result = SweepResult(done)
    if result.total:
        logger.info("status sweep at %s: %s", now.isoformat(), done)
    return result


# --- Agent registration and identity (azcmagent connect) ------------------------------------------------------

AGENT_HEARTBEAT_FACTS = {
    # heartbeat body key → model field
    "agentVersion": "agent_version",
    "osName": "os_name",
    "osType": "os_type",
    "osVersion": "os_version",
    "osSku": "os_sku",
    "osEdition": "os_edition",
    "computerName": "computer_name",
    "machineFqdn": "machine_fqdn",
    "dnsFqdn": "dns_fqdn",
    "domainName": "domain_name",
}


def load_public_key_b64(value: str):
    """An agent's ``clientPublicKey``: base64 of the DER SubjectPublicKeyInfo of an RSA key (≥ 2048 bits)."""
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("not base64 DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("an RSA key of at least 2048 bits is required")
    return key


def _same_public_key(a: str, b: str) -> bool:
    try:
        return load_public_key_b64(a).public_numbers() == load_public_key_b64(b).public_numbers()
    except ValueError:
        return False


def _same_registration(machine: Machine, properties: Mapping[str, Any]) -> bool:
    """The PUT names the key (and vmId, if any) the machine already has: an ARM PUT of what GET returned, or the
    same agent registering again. Nothing about the identity changes, so no proof is needed."""
    given_vm_id = properties.get("vmId")
    try:
        same_vm_id = given_vm_id is None or uuid.UUID(str(given_vm_id)) == machine.vm_id
    except ValueError:
        return False
    return same_vm_id and _same_public_key(str(properties.get("clientPublicKey") or ""), machine.client_public_key)


def _check_key_proof(machine: Machine, key_proof: KeyProof | None, *, resource_group: ResourceGroup) -> None:
    """Re-attaching a machine that has an agent key needs a proof of possession of that key (``machines.keyproof``).
    Without one, or signed by another key: 409 ``ResourceExists`` (the agent's AZCM0044); a malformed proof or one
    bound to another request: 400 ``InvalidKeyProof``."""
    taken = (
        f"AZCM0044: A resource with the same name already exists: machine '{machine.name}' in resource group "
        f"'{resource_group.name}' is connected with another agent key. Re-attaching it needs a proof of "
        "possession of that key (azcmagent connect sends one from the server that holds it); otherwise use "
        "--resource-name to choose another name, or have a principal allowed to delete remove the machine first."
    )
    if key_proof is None or not key_proof.token.strip():
        raise Conflict(taken, code="ResourceExists", target=machine.name)
    try:
        keyproof.verify_key_proof(key_proof, public_key=load_public_key_b64(machine.client_public_key), now=time.time())
    except keyproof.KeyProofWrongKey as exc:
        raise Conflict(f"{taken} ({exc})", code="ResourceExists", target=machine.name) from exc
    except keyproof.KeyProofInvalid as exc:
        raise Invalid(f"Invalid key proof: {exc}", code="InvalidKeyProof", target=keyproof.HEADER) from exc


@transaction.atomic
def machine_register(
    *,
    resource_group: ResourceGroup,
    name: str,
    location: str,
    properties: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    correlation_id: str = "",
    onboarding_method: str = "",
    onboarded_by: str = "",
    actor: str = "",
    actor_type: str = "User",
    key_proof: KeyProof | None = None,
) -> Upsert:
    """An agent registers its machine (ARM PUT carrying ``properties.clientPublicKey``).

    The machine is stored ``provisioningState=Creating`` with the agent's public key, vmId, vmUuid and OS facts,
    until ``machine_issue_certificate`` issues its identity. A name that is free, or held by a placeholder created
    through ARM (no agent key yet), is registered at once. A machine that already has an agent key is re-attached
    (new key and vmId, old certificate void, history kept) only with ``key_proof`` signed by its current key; the
    vmUuid proves nothing, since anyone who may read the machine reads it. The same key again (an ARM PUT of what
    GET returned) is a plain update.
    """
    public_key = str(properties.get("clientPublicKey") or "")
    try:
        load_public_key_b64(public_key)
    except ValueError as exc:
        raise Invalid(
            f"properties.clientPublicKey is not a public key: {exc}", target="properties.clientPublicKey"
        ) from exc
    if not properties.get("vmId"):
        raise Invalid("properties.vmId is required to register an agent.", target="properties.vmId")
    existing = (
        Machine.objects.select_for_update().filter(resource_group=resource_group, name__iexact_ascii=name).first()
    )
    reattached = existing is not None and bool(existing.client_public_key)
    if reattached:
        if _same_registration(existing, properties):
            return machine_create_or_update(
                resource_group=resource_group,
                name=name,
                location=location,
                tags=tags,
                properties=properties,
                actor=actor,
                actor_type=actor_type,
            )
        _check_key_proof(existing, key_proof, resource_group=resource_group)
    upsert = _machine_upsert(
        resource_group=resource_group,
        name=name,
        location=location,
        tags=tags,
        properties=properties,
        kind=None,
        identity_type=None,
        actor=actor,
        actor_type=actor_type,
        identity_may_change=True,
    )
    machine = upsert.instance
    machine.provisioning_state = "Creating"
    machine.certificate_thumbprint = ""
    machine.certificate_expires_at = None
    machine.correlation_id = str(correlation_id or "")[:64]
    machine.onboarding_method = onboarding_method[:40]
    machine.onboarded_by = onboarded_by[:200]
    # A reconnect starts over: no heartbeat from the new agent yet (AwaitingConnection), so a machine refused as
    # Expired accepts the new agent's first heartbeat, which records the transition to Connected.
    machine.last_heartbeat_at = None
    machine.save(
        update_fields=[
            "provisioning_state",
            "certificate_thumbprint",
            "certificate_expires_at",
            "correlation_id",
            "onboarding_method",
            "onboarded_by",
            "last_heartbeat_at",
        ]
    )
    if reattached:
        logger.info(
            "machine %s re-attached by %s (%s) with a proof of possession of its previous key; new vmId %s",
            machine.arm_id,
            actor or onboarded_by or "-",
            actor_type,
            machine.vm_id,
        )
    return upsert


@dataclass(frozen=True)
class MachineCertificate:
    pem: bytes
    thumbprint: str
    expires_at: datetime


@transaction.atomic
def machine_issue_certificate(*, machine_id: int, public_key_b64: str) -> MachineCertificate:
    """Issue the machine's identity certificate (portal CA, 90 days) for the key it registered, record its
    thumbprint and expiry, and finish provisioning (``Creating`` → ``Succeeded``). ``public_key_b64`` is the key the
    caller proved it holds; it must be the registered one."""
    from identity.pki import issue_machine_certificate

    machine = Machine.objects.select_for_update().filter(pk=machine_id).first()
    if machine is None:
        raise NotFound("The machine no longer exists.")
    if not machine.client_public_key or not _same_public_key(machine.client_public_key, public_key_b64):
        raise Invalid("The key in the certificate request is not the key this machine registered.", code="KeyMismatch")
    issued = issue_machine_certificate(public_key=load_public_key_b64(public_key_b64), vm_id=str(machine.vm_id))
    Machine.objects.filter(pk=machine_id).update(
        certificate_thumbprint=issued.thumbprint_sha1,
        certificate_expires_at=issued.not_after,
        provisioning_state="Succeeded",
    )
    return MachineCertificate(pem=issued.pem, thumbprint=issued.thumbprint_sha1, expires_at=issued.not_after)


def machine_heartbeat_facts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The model fields a heartbeat body may set (agent version, OS facts, names, detected properties)."""
    facts: dict[str, Any] = {}
    for key, field in AGENT_HEARTBEAT_FACTS.items():
        value = payload.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            max_length = Machine._meta.get_field(field).max_length
            facts[field] = str(value)[:max_length]
    if "os_name" in facts:
        facts["os_name"] = facts["os_name"].lower()
        if facts["os_name"] not in ("linux", "windows"):
            del facts["os_name"]
    if isinstance(payload.get("fqdn"), str):
        facts.setdefault("machine_fqdn", payload["fqdn"][:255])
        facts.setdefault("dns_fqdn", payload["fqdn"][:255])
    detected = payload.get("detectedProperties")
    if isinstance(detected, Mapping):
        facts["detected_properties"] = {str(k)[:100]: str(v)[:500] for k, v in list(detected.items())[:50]}
    return facts


# --- end of agent registration and identity ---------------------------------------------------------------


# --- Machine extensions (ARM plane) --------------------------------------------------------------------------

# ARM property name → Extension field, for the members an extension PUT/PATCH may carry.
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
    import json

    from arcportal.crypto import encrypt_text

    if not value:
        return ""
    return encrypt_text(json.dumps(dict(value), separators=(",", ":")))


def extension_protected_settings(*, extension) -> dict[str, Any]:
    """The decrypted protectedSettings, for the agent plane only: no ARM response ever carries them."""
    import json

    from arcportal.crypto import decrypt_text

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
    from machines.models import Extension

    name = _check(validation.validate_extension_name, name)
    location = _check(validation.validate_location, location) if location else machine.location
    tags = _check(validation.validate_tags, tags) if tags is not None else None
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
    if tags is not None:
        extension.tags = _check(validation.validate_tags, tags)
    _apply_extension_properties(extension, properties or {})
    extension.provisioning_state = "Succeeded"
    extension.save()
    return extension


@transaction.atomic
def extension_delete(*, extension) -> None:
    extension.delete()
