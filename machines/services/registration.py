"""An agent registers its machine (``azcmagent connect``): the ARM PUT carrying its public key, then the identity
certificate the portal CA issues for that key (``identity.pki``).

Re-attaching a machine that already has an agent key needs a proof of possession of that key (``machines.keyproof``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from arcportal.exceptions import Conflict, Invalid, NotFound
from identity.pki import issue_machine_certificate
from machines import keyproof
from machines.keyproof import KeyProof
from machines.keys import load_public_key_b64, same_public_key
from machines.models import Machine, ResourceGroup
from machines.services.common import Upsert
from machines.services.machines import CERTIFICATE, WRITE, machine_create_or_update, machine_recorded, machine_upsert

logger = logging.getLogger("machines.services")


def _same_registration(machine: Machine, properties: Mapping[str, Any]) -> bool:
    """The PUT names the key (and vmId, if any) the machine already has: an ARM PUT of what GET returned, or the
    same agent registering again. Nothing about the identity changes, so no proof is needed."""
    given_vm_id = properties.get("vmId")
    try:
        same_vm_id = given_vm_id is None or uuid.UUID(str(given_vm_id)) == machine.vm_id
    except ValueError:
        return False
    return same_vm_id and same_public_key(str(properties.get("clientPublicKey") or ""), machine.client_public_key)


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
    upsert = machine_upsert(
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
    machine_recorded(machine, WRITE, actor or onboarded_by, registration="reattach" if reattached else "register")
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
    machine = Machine.objects.select_for_update().filter(pk=machine_id).first()
    if machine is None:
        raise NotFound("The machine no longer exists.")
    if not machine.client_public_key or not same_public_key(machine.client_public_key, public_key_b64):
        raise Invalid("The key in the certificate request is not the key this machine registered.", code="KeyMismatch")
    issued = issue_machine_certificate(public_key=load_public_key_b64(public_key_b64), vm_id=str(machine.vm_id))
    Machine.objects.filter(pk=machine_id).update(
        certificate_thumbprint=issued.thumbprint_sha1,
        certificate_expires_at=issued.not_after,
        provisioning_state="Succeeded",
    )
    machine_recorded(machine, CERTIFICATE, f"vmId {machine.vm_id}", thumbprint=issued.thumbprint_sha1)
    return MachineCertificate(pem=issued.pem, thumbprint=issued.thumbprint_sha1, expires_at=issued.not_after)
