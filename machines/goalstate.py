"""The goal state of one machine (``GET /his/machines/{vmId}/goalstate``, docs/extensions.md): what its agent must
do, with an etag so an unchanged goal state costs one small query and a 304.

* Extensions listed: every extension ever handed to an agent (``sequence`` > 0), with its last ``operation``; the
  agent skips sequences it applied. Run commands listed: those with an operation not yet reported.
* protectedSettings/protectedParameters travel only for operations still to do, each in an envelope encrypted to
  THIS machine's key, bound to ``<vmId>/<kind>/<name>/<sequence>`` (``machines.envelopes``); never in plain text.
* The etag hashes what decides the agent's work (names, sequences, operations, reported sequences), not the body,
  whose envelopes differ on every answer.

Also the replay check of the request-bound machine tokens (``request_nonce_claim``): Redis ``SET NX`` when Redis is
configured, the database (``HeartbeatNonce``) otherwise or while Redis fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import F

from machines.envelopes import envelope_aad, envelope_encrypt
from machines.heartbeat_replay import claim_in_database
from machines.keys import load_public_key_b64
from machines.models import Extension, Machine, RunCommand
from machines.services.extensions import extension_protected_settings
from machines.services.runcommands import run_command_protected_parameters

logger = logging.getLogger(__name__)
DEFAULT_POLL_SECONDS = 30


def goal_state_poll_seconds() -> int:
    return int(getattr(settings, "ARC_GOAL_STATE_SECONDS", DEFAULT_POLL_SECONDS))


def _extensions(machine_id: int):
    return Extension.objects.filter(machine_id=machine_id, sequence__gt=0).order_by("name")


def _run_commands(machine_id: int):
    return (
        RunCommand.objects.filter(machine_id=machine_id, sequence__gt=0)
        .exclude(reported_sequence__gte=F("sequence"))
        .order_by("name")
    )


@lru_cache(maxsize=1)
def _etag_sql() -> str:
    """What ``_extensions`` and ``_run_commands`` select, four columns each, in one statement (``UNION ALL``). Plain
    SQL, written once: the ORM would compile it again on every poll, which cost more than running it."""
    extension, run = Extension._meta.db_table, RunCommand._meta.db_table
    return (
        f"SELECT 'e', name, sequence, operation, reported_sequence FROM {extension} "  # noqa: S608 - models' tables
        "WHERE machine_id = %s AND sequence > 0 "
        f"UNION ALL SELECT 'r', name, sequence, operation, 0 FROM {run} "
        "WHERE machine_id = %s AND sequence > 0 AND reported_sequence < sequence"
    )


def goal_state_etag(*, machine_id: int) -> str:
    """The etag of the machine's goal state: one indexed query of what decides the agent's work."""
    with connection.cursor() as cursor:
        cursor.execute(_etag_sql(), [machine_id, machine_id])
        rows = sorted(tuple(row) for row in cursor.fetchall())
    digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()[:32]
    return f'"{digest}"'


@lru_cache(maxsize=1024)
def _public_key(public_key_b64: str):
    return load_public_key_b64(public_key_b64)


def _envelope(machine: Machine, kind: str, name: str, sequence: int, value: Any) -> dict[str, str] | None:
    if not value:
        return None
    return envelope_encrypt(
        _public_key(machine.client_public_key),
        value,
        aad=envelope_aad(str(machine.vm_id), kind, name, sequence),
        kid=machine.certificate_thumbprint,
    )


def goal_state_build(*, machine: Machine, etag: str) -> dict[str, Any]:
    """The goal-state body (docs/extensions.md "The contract in one paragraph")."""
    extensions = []
    for extension in _extensions(machine.pk):
        pending = extension.reported_sequence < extension.sequence and extension.operation != "delete"
        protected = extension_protected_settings(extension=extension) if pending else None
        extensions.append(
            {
                "name": extension.name,
                "publisher": extension.publisher,
                "type": extension.type,
                "typeHandlerVersion": extension.type_handler_version,
                "autoUpgradeMinorVersion": extension.auto_upgrade_minor_version is not False,
                "enableAutomaticUpgrade": bool(extension.enable_automatic_upgrade),
                "forceUpdateTag": extension.force_update_tag or None,
                "settings": extension.settings or {},
                "sequence": extension.sequence,
                "operation": extension.operation,
                "protectedSettings": _envelope(machine, "extensions", extension.name, extension.sequence, protected),
            }
        )
    run_commands = []
    for run in _run_commands(machine.pk):
        protected = run_command_protected_parameters(run_command=run) if run.operation == "run" else None
        run_commands.append(
            {
                "name": run.name,
                "source": {
                    "script": run.script or None,
                    "scriptUri": run.script_uri or None,
                    "commandId": run.command_id or None,
                },
                "parameters": run.parameters or [],
                "timeoutInSeconds": run.timeout_in_seconds,
                "runAsUser": run.run_as_user or None,
                "sequence": run.sequence,
                "operation": run.operation,
                "protectedParameters": _envelope(machine, "runCommands", run.name, run.sequence, protected),
            }
        )
    return {
        "etag": etag,
        "nextPollSeconds": goal_state_poll_seconds(),
        "extensions": extensions,
        "runCommands": run_commands,
    }


# --- replay check of request-bound machine tokens ----------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2.0)
    return client


def request_nonce_claim(*, nonce: str, at: datetime, ttl: int) -> bool:
    """Claim a token's ``jti`` once; False when it was seen before."""
    key = f"req:{nonce}"
    url = getattr(settings, "REDIS_URL", "") or ""
    if url:
        try:
            name = connection.settings_dict["NAME"]
            return bool(_redis(url).set(f"arc:req:{{{name}}}:{key}", "1", nx=True, ex=max(1, ttl)))
        except (redis.RedisError, OSError) as exc:
            logger.warning("request replay check: Redis unavailable (%s), claiming in the database", exc)
    return claim_in_database(key, at, ttl, recheck=True)
