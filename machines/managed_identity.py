"""The machine side of machine identities: answers identity's question "may this system-assigned identity sign in
with this certificate now?" from the machine row (``identity.machine_identities``, registered by
``MachinesConfig.ready``). Layering: identity is below machines, so identity asks and machines answers; nothing is
copied, so delete (also cascading from a resource group or subscription), re-attach, a new certificate and Expired
take effect on the next token request and the next ARM request with an issued token.
"""

from __future__ import annotations

from datetime import datetime

from identity.machine_identities import MachineCredential
from machines.models import Machine
from machines.selectors import machine_is_expired

SYSTEM_ASSIGNED = "SystemAssigned"


def machine_credential_resolve(*, principal_id: str, thumbprint: str, now: datetime) -> MachineCredential | None:
    """The credential of the machine whose identity is ``principal_id`` and whose current certificate is
    ``thumbprint`` (upper-case hex; the indexed column is looked up first), or ``None``."""
    machine = (
        Machine.objects.select_related("resource_group__subscription")
        .filter(certificate_thumbprint=thumbprint, identity_principal_id=principal_id)
        .first()
    )
    if machine is None:
        return None
    refused = ""
    if machine.identity_type != SYSTEM_ASSIGNED:
        refused = "the machine has no system-assigned identity"
    elif machine.provisioning_state != "Succeeded" or not machine.client_public_key:
        refused = f"the machine is {machine.provisioning_state}, not Succeeded"
    elif machine.certificate_expires_at is None or machine.certificate_expires_at <= now:
        refused = "the machine's certificate has expired"
    elif machine_is_expired(last_heartbeat_at=machine.last_heartbeat_at, now=now):
        refused = "the machine is Expired"
    return MachineCredential(
        principal_id=str(machine.identity_principal_id),
        thumbprint=machine.certificate_thumbprint.upper(),
        public_key_b64=machine.client_public_key,
        resource_id=machine.arm_id,
        refused=refused,
    )
