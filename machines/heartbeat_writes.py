"""Writing buffered heartbeats to the database: one bulk UPDATE, and the isolation of rows it cannot write.

``heartbeats_write(rows=…, rejected=…)`` is what ``machines.heartbeats.heartbeat_flush`` calls with a drained
batch. The batch is one statement (PostgreSQL: ``UPDATE … FROM jsonb_to_recordset(…)``; SQLite: ``UPDATE … FROM
json_each(…)``), run inside a savepoint. If the database refuses the statement because of the *data* (a value it
cannot store: ``DataError``, ``IntegrityError``, or the driver's encoding error), the batch is split in halves and
each half retried, down to single rows: the rows that still fail are handed back in ``rejected`` (the flush
dead-letters them) and every other row is written. One poisoned heartbeat can therefore never block the others
(issue 10, item 4). Errors that are not about the data (the database is down: ``OperationalError``) propagate
unchanged: the flush keeps the batch in Redis and the next flush retries it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction

from arcportal import textguard
from machines import status as rules
from machines.heartbeat_facts import FACT_FIELDS
from machines.models import Machine
from machines.services.transitions import machine_record_heartbeat

logger = logging.getLogger("machines.heartbeats")

# Refused by the database because of the values themselves; anything else is not the row's fault.
ROW_ERRORS = (DataError, IntegrityError, ValueError)
DEAD_LETTER_MAX = 1000  # entries kept in the dead-letter list (newest first)


@dataclass(frozen=True)
class PendingHeartbeat:
    machine_id: int
    at: datetime
    facts: dict[str, Any]


def parse_entries(
    raw: list[str], now: datetime, *, limits: textguard.Limits
) -> tuple[list[PendingHeartbeat], list[tuple[str, str, str]]]:
    """The drained entries as rows, and the ``(field, value, reason)`` of entries that can't be written."""
    rows, bad = [], []
    for field, value in zip(raw[::2], raw[1::2], strict=True):
        try:
            data = json.loads(value)
            at = datetime.fromisoformat(data["at"])
            if at.tzinfo is None:
                raise ValueError("a naive datetime")
            facts = {k: v for k, v in (data.get("f") or {}).items() if k in FACT_FIELDS}
            textguard.check_json_value(facts, limits=limits)
            rows.append(PendingHeartbeat(int(field), min(at, now), facts))
        except textguard.TextRefused as exc:
            bad.append((field, value, f"refused text: {exc}"))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            bad.append((field, value, f"malformed: {type(exc).__name__}"))
    return rows, bad


def dead_letter(client, key: str, bad: list[tuple[str, str, str]], now: datetime) -> None:
    """Keep what could not be written (bounded: the newest ``DEAD_LETTER_MAX``) and log it without its content."""
    for field, _value, reason in bad:
        logger.error("heartbeat flush: dead-lettered the pending heartbeat of machine %s (%s)", field[:20], reason)
    records = [
        json.dumps({"machine": field, "entry": value, "reason": reason, "at": now.isoformat()})
        for field, value, reason in bad
    ]
    pipe = client.pipeline(transaction=False)
    pipe.lpush(key, *records)
    pipe.ltrim(key, 0, DEAD_LETTER_MAX - 1)
    pipe.execute()


def error_summary(exc: BaseException) -> str:
    """The exception's class and first line only: database messages may quote the refused data."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"


def heartbeats_write(
    *, rows: list[PendingHeartbeat], rejected: list[tuple[PendingHeartbeat, str]] | None = None
) -> int:
    """One bulk UPDATE for machines still recorded Connected, then ``machine_record_heartbeat`` for the others
    (rare: recorded Offline/Expired while the heartbeat waited). Returns the number of machines written; rows the
    database refuses are appended to ``rejected`` as ``(row, reason)`` instead of failing the batch."""
    rejected = rejected if rejected is not None else []
    by_id: dict[int, PendingHeartbeat] = {}
    for row in rows:  # one per machine already (a hash field), but stay safe
        if row.machine_id not in by_id or by_id[row.machine_id].at < row.at:
            by_id[row.machine_id] = row
    updated = _bulk_update_isolated(list(by_id.values()), rejected)
    refused = {row.machine_id for row, _ in rejected}
    missed = set(by_id) - updated - refused
    written = len(updated)
    if missed:
        others = (
            Machine.objects.filter(pk__in=missed).exclude(status=rules.CONNECTED).values_list("pk", "last_heartbeat_at")
        )
        for machine_id, last in others:
            row = by_id[machine_id]
            if last is None or last < row.at:
                try:
                    written += _record_transition(row)
                except ROW_ERRORS as exc:
                    rejected.append((row, error_summary(exc)))
    return written


def _bulk_update_isolated(rows: list[PendingHeartbeat], rejected: list[tuple[PendingHeartbeat, str]]) -> set[int]:
    """``_bulk_update`` in a savepoint; on a data error, bisect until the refused rows are alone."""
    if not rows:
        return set()
    try:
        with transaction.atomic():
            return _bulk_update(rows)
    except ROW_ERRORS as exc:
        if len(rows) == 1:
            rejected.append((rows[0], error_summary(exc)))
            return set()
        half = len(rows) // 2
        return _bulk_update_isolated(rows[:half], rejected) | _bulk_update_isolated(rows[half:], rejected)


@transaction.atomic
def _record_transition(row: PendingHeartbeat) -> int:
    # Re-check under the row lock: a direct write may have recorded a newer heartbeat since.
    current = (
        Machine.objects.select_for_update().filter(pk=row.machine_id).values_list("status", "last_heartbeat_at").first()
    )
    if current is None:
        return 0
    status, last = current
    if last is not None and last >= row.at:
        return 0
    if status == rules.CONNECTED:
        Machine.objects.filter(pk=row.machine_id).update(last_heartbeat_at=row.at, **row.facts)
    else:
        machine_record_heartbeat(machine_id=row.machine_id, at=row.at, facts=row.facts)
    return 1


def _columns() -> list[tuple[str, str]]:
    """(model field, quoted column) of every fact a heartbeat may carry."""
    quote = connection.ops.quote_name
    return [(field, quote(Machine._meta.get_field(field).column)) for field in FACT_FIELDS]


# Identifiers only come from the model's metadata; the data travel as one JSON parameter.
_SQL_POSTGRESQL = """
UPDATE {table} AS m
   SET last_heartbeat_at = v.at, {sets}
  FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, at timestamptz, {types})
 WHERE m.id = v.id AND m.status = %s AND (m.last_heartbeat_at IS NULL OR m.last_heartbeat_at < v.at)
RETURNING m.id
"""
_SQL_SQLITE = """
UPDATE {table} AS m
   SET last_heartbeat_at = v.at, {sets}
  FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.at') AS at, {extract}
          FROM json_each(%s)) AS v
 WHERE m.id = v.id AND m.status = %s AND (m.last_heartbeat_at IS NULL OR m.last_heartbeat_at < v.at)
RETURNING id
"""


def _bulk_update(rows: list[PendingHeartbeat]) -> set[int]:
    """The one statement: returns the ids it updated."""
    if not rows:
        return set()
    table = connection.ops.quote_name(Machine._meta.db_table)
    columns = _columns()
    sets = ", ".join(f"{col} = COALESCE(v.{field}, m.{col})" for field, col in columns)
    if connection.vendor == "postgresql":
        payload = [{"id": r.machine_id, "at": r.at.isoformat(), **r.facts} for r in rows]
        types = ", ".join(f"{field} {'jsonb' if field == 'detected_properties' else 'text'}" for field, _ in columns)
        sql = _SQL_POSTGRESQL.format(table=table, sets=sets, types=types)
    else:
        adapt = connection.ops.adapt_datetimefield_value
        payload = [{"id": r.machine_id, "at": str(adapt(r.at)), **r.facts} for r in rows]
        extract = ", ".join(f"json_extract(value, '$.{field}') AS {field}" for field, _ in columns)
        sql = _SQL_SQLITE.format(table=table, sets=sets, extract=extract)
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(payload, separators=(",", ":")), rules.CONNECTED])
        return {row[0] for row in cursor.fetchall()}
