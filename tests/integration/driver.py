"""A tiny JSON-lines driver the integration tests run as a subprocess with the same environment as the worker.

It talks to the installation's database through the services (never the test process's database), so the
tests read and write exactly what the worker and beat see, on SQLite or PostgreSQL alike. One JSON command per
stdin line, one JSON answer per stdout line:

    {"op": "seed", "name": "m1", "heartbeat_age": 60, "status": "Connected", "webhook_url": "http://…"}
    {"op": "heartbeat", "machine_id": 1}
    {"op": "state", "machine_id": 1}
    {"op": "prepare", "resource_group": "arc-servers", "webhook_url": "http://…"}
    {"op": "find", "resource_group": "arc-servers", "name": "web-01"}
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arcportal.settings")
    import django

    django.setup()
    from django.utils import timezone

    from identity.services import tenant_ensure
    from machines.models import Machine, MachineStatusEvent
    from machines.services import (
        machine_record_heartbeat,
        resource_group_create,
        subscription_ensure_default,
    )
    from machines.webhooks import webhook_create

    def seed(cmd):
        subscription = subscription_ensure_default(tenant=tenant_ensure())
        group = resource_group_create(subscription=subscription, name=f"rg-{cmd['name']}", location="westeurope")
        age = cmd.get("heartbeat_age")
        machine = Machine.objects.create(
            resource_group=group,
            name=cmd["name"],
            location="westeurope",
            status=cmd.get("status", "AwaitingConnection"),
            last_heartbeat_at=None if age is None else timezone.now() - timedelta(seconds=age),
        )
        answer = {"machine_id": machine.pk, "last_heartbeat_at": _iso(machine.last_heartbeat_at)}
        if cmd.get("webhook_url"):
            created = webhook_create(subscription=subscription, url=cmd["webhook_url"])
            answer["secret"] = created.secret
        return answer

    def heartbeat(cmd):
        at = timezone.now()
        status = machine_record_heartbeat(machine_id=cmd["machine_id"], at=at)
        return {"at": _iso(at), "status": status}

    def state(cmd):
        machine = Machine.objects.get(pk=cmd["machine_id"])
        events = MachineStatusEvent.objects.filter(machine=machine).order_by("at", "id")
        return {
            "status": machine.status,
            "last_heartbeat_at": _iso(machine.last_heartbeat_at),
            "last_status_change": _iso(machine.last_status_change),
            "events": [
                {"from": e.from_status, "to": e.to_status, "at": _iso(e.at), "reason": e.reason} for e in events
            ],
        }

    def prepare(cmd):
        """The default subscription, a resource group for the agent and a webhook on the subscription."""
        tenant = tenant_ensure()
        subscription = subscription_ensure_default(tenant=tenant)
        resource_group_create(subscription=subscription, name=cmd["resource_group"], location="westeurope")
        created = webhook_create(subscription=subscription, url=cmd["webhook_url"])
        return {
            "tenant_id": str(tenant.tenant_id),
            "subscription_id": str(subscription.subscription_id),
            "secret": created.secret,
        }

    def find(cmd):
        machine = Machine.objects.filter(resource_group__name=cmd["resource_group"], name=cmd["name"]).first()
        return {"machine_id": None if machine is None else machine.pk}

    ops = {"seed": seed, "heartbeat": heartbeat, "state": state, "prepare": prepare, "find": find}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            answer = ops[cmd["op"]](cmd)
        except Exception as exc:  # reported to the test, which fails on it
            answer = {"error": f"{exc.__class__.__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


def _iso(value):
    return None if value is None else value.isoformat()


if __name__ == "__main__":
    main()
