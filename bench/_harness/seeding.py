"""The fleet the agent-plane benches serve: machines recorded Connected, each with a certificate for its key."""

from __future__ import annotations

import uuid
from typing import Any


def seed_connected_fleet(machines: int, keys: int, *, group: str, prefix: str, facts: dict[str, Any] | None = None):
    """``machines`` machines recorded Connected in a new resource group ``group``, named ``{prefix}-000000`` on, each
    with a certificate for one of ``keys`` shared keys (minting a key per machine would dominate the seeding), and the
    agent's facts from a heartbeat body ``facts`` when given. Returns ``(pool, fleet, group)``: the private keys,
    ``(vm_id, key index, certificate thumbprint)`` per machine in name order, and the group."""
    from azcmagent import identity
    from django.utils import timezone

    from identity.services import tenant_ensure
    from machines.models import Machine
    from machines.services import machine_issue_certificate, resource_group_create, subscription_ensure_default

    subscription = subscription_ensure_default(tenant=tenant_ensure())
    resource_group = resource_group_create(subscription=subscription, name=group, location="westeurope")
    pool = [identity.new_key() for _ in range(keys)]
    public = [identity.public_key_b64(key) for key in pool]
    described: dict[str, Any] = {"os_name": "linux"}
    if facts:
        described |= {
            "os_name": facts["osName"],
            "os_type": facts["osType"],
            "os_version": facts["osVersion"],
            "os_sku": facts["osSku"],
            "computer_name": facts["computerName"],
            "domain_name": facts["domainName"],
            "agent_version": facts["agentVersion"],
        }
    now = timezone.now()
    rows = [
        Machine(
            resource_group=resource_group,
            name=f"{prefix}-{i:06d}",
            location="westeurope",
            vm_id=uuid.uuid4(),
            client_public_key=public[i % keys],
            status="Connected",
            last_heartbeat_at=now,
            last_status_change=now,
            **described,
        )
        for i in range(machines)
    ]
    Machine.objects.bulk_create(rows, batch_size=1000)
    fleet = []
    for i, machine in enumerate(Machine.objects.filter(resource_group=resource_group).order_by("name")):
        issued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=public[i % keys])
        fleet.append((str(machine.vm_id), i % keys, issued.thumbprint))
    return pool, fleet, resource_group
