"""Reads for the agent plane and the machine page's onboarding panel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, router

from machines.models import Machine
from machines.services import AGENT_HEARTBEAT_FACTS

METHOD_LABELS = {
    "devicecode": "Device code",
    "serviceprincipal": "Service principal",
    "accesstoken": "Access token",
}


def _method_key(method: str) -> str:
    """``DeviceCode`` (what the ARM PUT records), ``device_code`` … → ``devicecode``."""
    return method.replace("_", "").replace(" ", "").lower()


def machine_by_vm_id(*, vm_id: str) -> Machine | None:
    """The machine with this vmId (unique), on the heartbeat hot path: one indexed lookup, no ORDER BY."""
    try:
        return Machine.objects.select_related("resource_group__subscription").get(vm_id=vm_id)
    except (Machine.DoesNotExist, ValidationError, ValueError):
        return None


# What the heartbeat endpoint reads: identity, recorded status, last heartbeat (expiry) and the reported facts
# (so only changed facts are buffered). Nothing else: no joins, no wide rows.
HEARTBEAT_FIELDS: tuple[str, ...] = (
    "id",
    "vm_id",
    "status",
    "last_heartbeat_at",
    "certificate_thumbprint",
    "certificate_expires_at",
    "client_public_key",
    *AGENT_HEARTBEAT_FACTS.values(),
    "detected_properties",
)
_heartbeat_queries: dict[tuple[str, str], tuple[str, Any, list]] = {}


def _heartbeat_query(alias: str) -> tuple[str, Any, list]:
    """The SQL of ``Machine.objects.filter(vm_id=…).order_by().values_list(*HEARTBEAT_FIELDS)`` (no ORDER BY: the
    vmId is unique, and sorting one row still costs the planner), compiled once per database, with its compiler
    and the fields' converters (datetimes, JSON, UUID)."""
    connection = connections[alias]
    key = (alias, connection.settings_dict["NAME"])
    found = _heartbeat_queries.get(key)
    if found is None:
        probe = uuid.UUID(int=0)
        query = Machine.objects.using(alias).filter(vm_id=probe).order_by().values_list(*HEARTBEAT_FIELDS).query
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if len(params) != 1:  # pragma: no cover - the filter is one equality
            raise RuntimeError("the heartbeat query must have exactly one parameter")
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        found = (sql, compiler, converters)
        _heartbeat_queries[key] = found
    return found


def _hot_cursor(connection):
    """A cursor for the heartbeat query. On PostgreSQL (psycopg 3), unless ``ARC_HEARTBEAT_PREPARED_STATEMENTS`` is
    off, a server-binding cursor that runs the query as a prepared statement of the (persistent) connection: the
    server parses and plans it once per connection instead of once per heartbeat. Django disables prepared
    statements by default for the sake of transaction-pooling proxies (PgBouncer before 1.21); turn the setting off
    behind one. Wrapped like any Django cursor: errors, query logging and ``assertNumQueries`` behave the same."""
    if connection.vendor != "postgresql" or not getattr(settings, "ARC_HEARTBEAT_PREPARED_STATEMENTS", True):
        return connection.cursor()
    connection.ensure_connection()
    return connection._prepare_cursor(_prepared_cursor_class()(connection.connection))


@lru_cache(maxsize=1)
def _prepared_cursor_class():
    import psycopg

    class PreparedCursor(psycopg.Cursor):
        """Every execute is prepared (psycopg keeps the statement per connection, up to ``prepared_max``)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


def machine_for_heartbeat(*, vm_id: str) -> SimpleNamespace | None:
    """The heartbeat hot path's read: one indexed query by vmId (unique), compiled once, returning only
    ``HEARTBEAT_FIELDS`` (``pk`` too) as attributes; None when no machine has that vmId."""
    try:
        value = uuid.UUID(str(vm_id))
    except ValueError:
        return None
    alias = router.db_for_read(Machine)
    sql, compiler, converters = _heartbeat_query(alias)
    connection = connections[alias]
    param = Machine._meta.get_field("vm_id").get_db_prep_value(value, connection)
    with _hot_cursor(connection) as cursor:
        cursor.execute(sql, [param])
        row = cursor.fetchone()
    if row is None:
        return None
    if converters:
        row = next(iter(compiler.apply_converters([row], converters)))
    machine = SimpleNamespace(**dict(zip(HEARTBEAT_FIELDS, row, strict=True)))
    machine.pk = machine.id
    return machine


@dataclass(frozen=True)
class OnboardingSummary:
    method: str  # as recorded: "DeviceCode" | "ServicePrincipal" | ""
    method_label: str  # "Device code by admin", "Service principal 1234…", ""
    onboarded_by: str
    correlation_id: str
    script_line: str  # "Onboarded with a script generated by admin at 2026-11-27 05:00 UTC" or ""
    certificate_thumbprint: str
    certificate_expires_at: datetime | None
    vm_id: str
    vm_uuid: str
    provisioning_state: str

    @property
    def has_agent(self) -> bool:
        return bool(self.certificate_thumbprint or self.method)


def _script_line(correlation_id: str) -> str:
    from onboarding.models import ScriptGeneration

    if not correlation_id:
        return ""
    try:
        script = ScriptGeneration.objects.filter(correlation_id=uuid.UUID(correlation_id)).first()
    except ValueError:  # not a GUID: a correlation id from elsewhere
        return ""
    if script is None:
        return ""
    who = script.created_by_name or (script.created_by.get_username() if script.created_by else "someone")
    return f"Onboarded with a script generated by {who} at {script.created_at:%Y-%m-%d %H:%M} UTC"


def machine_onboarding_summary(machine: Machine) -> OnboardingSummary:
    """What the machine page shows about how the machine was onboarded and its identity certificate."""
    method = machine.onboarding_method or ""
    key = _method_key(method)
    label = METHOD_LABELS.get(key, method)
    if label and machine.onboarded_by:
        joiner = " " if key == "serviceprincipal" else " by "
        label = f"{label}{joiner}{machine.onboarded_by}"
    return OnboardingSummary(
        method=method,
        method_label=label,
        onboarded_by=machine.onboarded_by,
        correlation_id=machine.correlation_id,
        script_line=_script_line(machine.correlation_id),
        certificate_thumbprint=machine.certificate_thumbprint,
        certificate_expires_at=machine.certificate_expires_at,
        vm_id=str(machine.vm_id or ""),
        vm_uuid=machine.vm_uuid,
        provisioning_state=machine.provisioning_state,
    )
