"""The heartbeat endpoint's read of its machine: ``machine_for_heartbeat(vm_id=…)``, the hot path's one query.

One indexed query by vmId (unique), compiled once per database, returning only ``HEARTBEAT_FIELDS``. On PostgreSQL
(psycopg 3) it runs as a prepared statement of the persistent connection, so the server parses and plans it once per
connection instead of once per heartbeat (``ARC_HEARTBEAT_PREPARED_STATEMENTS``; docs/performance.md). That needs a
server-binding psycopg cursor, which Django's public cursor API does not offer: ``_hot_cursor`` is the one place
that builds one, from the connection's DB-API connection, and wraps it the way Django wraps its own cursors
(``make_debug_cursor``/``make_cursor``), so errors, query logging and ``assertNumQueries`` behave the same.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connections, router

from machines.heartbeat_facts import AGENT_HEARTBEAT_FACTS
from machines.models import Machine

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
    connection.validate_thread_sharing()
    cursor = _prepared_cursor_class()(connection.connection)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


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
