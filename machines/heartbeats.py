"""The heartbeat write path (issue 6): steady-state heartbeats are buffered in Redis and written in bulk.

* ``heartbeat_ingest`` — what the agent plane calls for a heartbeat whose signature it checked. It also makes the
  replay check: the token's ``jti`` is claimed once (``nonce``); a second claim raises ``HeartbeatReplayed``. A
  heartbeat that changes the status (the machine's *recorded* status is not Connected: first heartbeat, back from
  Offline or Expired) goes straight to ``machine_record_heartbeat`` — one UPDATE and the transition event at once.
  Any other heartbeat is ONE Redis round trip, one Lua script (``_ACCEPT``): ``SET <jti> NX EX <token life>``,
  then ``HSET <pending> <machine id> {"at": …, "f": {changed facts}}`` (latest wins) and ``SET <lease> NX PX
  <flush interval>``. No database query. When Redis is not configured or does not answer, the heartbeat is written
  directly instead (never rejected, never lost) and its ``jti`` is claimed in the database (``HeartbeatNonce``).
* ``heartbeat_flush`` — writes every pending heartbeat with ONE bulk UPDATE (PostgreSQL: ``UPDATE … FROM
  jsonb_to_recordset(…)``; SQLite: ``UPDATE … FROM json_each(…)``). It never moves ``last_heartbeat_at``
  backwards, writes facts only where the heartbeat changed them, and routes a machine whose recorded status is no
  longer Connected (the sweep marked it Offline while its heartbeat sat in Redis) through
  ``machine_record_heartbeat``, so that transition is recorded like any other.

Who flushes: beat every ``ARC_HEARTBEAT_FLUSH_SECONDS`` (2 s), the status sweep task before it sweeps, and the web
tier itself — the request whose ``SET NX`` wins the lease (at most one per interval) flushes inline, so pending
heartbeats reach the database within about one interval even while beat is down.

Crash safety: a flush first moves the pending hash to a processing hash (Lua, atomic: ``RENAME``, or a merge when
a processing hash is left over), writes the database, and only then deletes what it wrote from the processing
hash. A flush that dies in between leaves the processing hash; the next flush merges the new heartbeats into it
and writes them all. The bulk UPDATE is idempotent (``last_heartbeat_at < v.at``), so a heartbeat written twice is
harmless. Concurrent flushes are safe for the same reason; a generation counter keeps one flush from deleting
entries another flush merged in after it drained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from machines import status as rules
from machines.models import HeartbeatNonce, Machine
from machines.services import AGENT_HEARTBEAT_FACTS, machine_record_heartbeat

logger = logging.getLogger(__name__)

FACT_FIELDS: tuple[str, ...] = (*AGENT_HEARTBEAT_FACTS.values(), "detected_properties")
REDIS_DOWN_BACKOFF_SECONDS = 5.0  # after a Redis error, write directly for this long before trying Redis again

# KEYS: jti, pending, lease — ARGV: jti lifetime in s (0: no replay check), buffer (1/0), field, entry, lease in ms.
# Returns -1 when the jti was seen before (nothing written), else 1 when this request won the flush lease, else 0.
_ACCEPT = """
if ARGV[1] ~= '0' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return -1
end
if ARGV[2] == '0' then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[5]) then
  return 1
end
return 0
"""

# KEYS: pending, processing, generation, lease — ARGV: lease in ms. Returns {generation, {field, value, …}}.
_DRAIN = """
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
local has_pending = redis.call('EXISTS', KEYS[1]) == 1
local has_processing = redis.call('EXISTS', KEYS[2]) == 1
if not has_pending and not has_processing then
  return {0, {}}
end
if has_pending then
  if has_processing then
    local items = redis.call('HGETALL', KEYS[1])
    for i = 1, #items, 2 do
      redis.call('HSET', KEYS[2], items[i], items[i + 1])
    end
    redis.call('DEL', KEYS[1])
  else
    redis.call('RENAME', KEYS[1], KEYS[2])
  end
end
local generation = redis.call('INCR', KEYS[3])
return {generation, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: processing, generation — ARGV: the generation drained. Deletes the processing hash if nobody merged since.
_FINISH = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: processing — ARGV: field, value, … Deletes the entries that still hold the value this flush wrote.
_FINISH_FIELDS = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


@dataclass(frozen=True)
class _Keys:
    base: str
    pending: str
    processing: str
    generation: str
    lease: str

    def nonce(self, nonce: str) -> str:
        return f"{self.base}jti:{_nonce_key(nonce)}"


def _nonce_key(nonce: str) -> str:
    """The nonce itself, or its SHA-256 when it is long (a jti is the agent's choice): a bounded key."""
    return nonce if len(nonce) <= 100 else "sha256:" + hashlib.sha256(nonce.encode()).hexdigest()


class HeartbeatReplayed(Exception):
    """The heartbeat token's ``jti`` was used before: nothing was recorded."""


@dataclass(frozen=True)
class PendingHeartbeat:
    machine_id: int
    at: datetime
    facts: dict[str, Any]


class _Redis(NamedTuple):
    """A process's heartbeat connection and the Lua scripts registered on it."""

    client: redis.Redis
    drain: Any
    finish: Any
    finish_fields: Any
    accept: Any


_clients: dict[str, _Redis] = {}
_down_until: dict[str, float] = {}


def _forget_clients() -> None:
    """A forked child (gunicorn, Celery prefork) must not share its parent's connection."""
    _clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients)


def flush_interval() -> float:
    return float(getattr(settings, "ARC_HEARTBEAT_FLUSH_SECONDS", 2.0))


def _redis_url() -> str:
    return getattr(settings, "REDIS_URL", "") or ""


def buffering_enabled() -> bool:
    """Heartbeats are buffered when Redis is configured and the flush interval is positive."""
    return bool(_redis_url()) and flush_interval() > 0


def _keys() -> _Keys:
    # One namespace per database (a hash tag: one cluster slot), so installations, test runs and benches sharing
    # a Redis never mix their heartbeats.
    name = connection.settings_dict["NAME"]
    found = _keys_cache.get(name)
    if found is None:
        base = f"arc:hb:{{{name}}}:"
        found = _keys_cache[name] = _Keys(
            base, base + "pending", base + "processing", base + "generation", base + "lease"
        )
    return found


_keys_cache: dict[str, _Keys] = {}


def _client(url: str) -> _Redis:
    found = _clients.get(url)
    if found is None:
        # One connection per process, not a pool: a pooled command costs two getpid() and a poll() more, and system
        # calls are most of a heartbeat's cost (docs/performance.md). Commands are serialised by redis-py's lock.
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=0.5,
            socket_timeout=2.0,
            decode_responses=True,
            retry_on_timeout=False,
            single_connection_client=True,
        )
        found = _Redis(
            client,
            client.register_script(_DRAIN),
            client.register_script(_FINISH),
            client.register_script(_FINISH_FIELDS),
            client.register_script(_ACCEPT),
        )
        _clients[url] = found
    return found


def _redis_usable(url: str) -> bool:
    return time.monotonic() >= _down_until.get(url, 0.0)


def _redis_failed(url: str, exc: Exception) -> None:
    _down_until[url] = time.monotonic() + REDIS_DOWN_BACKOFF_SECONDS
    logger.warning("Redis at %s unavailable for heartbeats (%s): writing them directly", url, exc)


def _changed_facts(facts: Mapping[str, Any], known: Machine | None) -> dict[str, Any]:
    if known is None:
        return dict(facts)
    return {field: value for field, value in facts.items() if getattr(known, field, None) != value}


def heartbeat_ingest(
    *,
    machine_id: int,
    recorded_status: str,
    at: datetime,
    facts: Mapping[str, Any] | None = None,
    known: Machine | None = None,
    nonce: str = "",
    nonce_ttl: int = 0,
) -> str:
    """Accept an authenticated heartbeat; returns the machine's status after it (always Connected).

    ``recorded_status`` is the machine's stored status as the caller loaded it; ``known`` (optional) is that
    loaded machine, so only facts that differ from it are buffered. ``nonce`` (e.g. ``<vmId>:<jti>``) is claimed for
    ``nonce_ttl`` seconds before anything is recorded: a nonce claimed before raises ``HeartbeatReplayed``. A status
    change is written at once (``machine_record_heartbeat``); a steady-state heartbeat goes to Redis unless Redis is
    off or down. Raises ``NotFound`` (from the direct write) when the machine no longer exists.
    """
    facts = dict(facts or {})
    url = _redis_url()
    if not buffering_enabled() or not _redis_usable(url):
        return _direct(machine_id=machine_id, at=at, facts=facts, nonce=nonce, nonce_ttl=nonce_ttl)
    buffer = recorded_status == rules.CONNECTED
    keys = _keys()
    entry = (
        json.dumps({"at": at.isoformat(), "f": _changed_facts(facts, known)}, separators=(",", ":")) if buffer else ""
    )
    try:
        outcome = _client(url).accept(
            keys=[keys.nonce(nonce), keys.pending, keys.lease],
            args=[max(1, nonce_ttl) if nonce else 0, int(buffer), machine_id, entry, int(flush_interval() * 1000) or 1],
        )
    except redis.RedisError as exc:
        _redis_failed(url, exc)
        return _direct(machine_id=machine_id, at=at, facts=facts, nonce=nonce, nonce_ttl=nonce_ttl)
    if outcome == -1:
        raise HeartbeatReplayed(nonce)
    if not buffer:
        return machine_record_heartbeat(machine_id=machine_id, at=at, facts=facts)
    if outcome == 1:
        # No flush for a whole interval (beat down, or quiet): this request flushes. Its heartbeat is safe in Redis
        # whatever happens here, so a failure only delays the write until the next flush.
        try:
            heartbeat_flush()
        except Exception:
            logger.exception("inline heartbeat flush failed; the next flush retries")
    return rules.CONNECTED


def _direct(*, machine_id: int, at: datetime, facts: dict[str, Any], nonce: str, nonce_ttl: int) -> str:
    """Without Redis: claim the nonce in the database, then write the heartbeat (one transaction)."""
    with transaction.atomic():
        if nonce and not _claim_nonce_in_database(nonce, at, nonce_ttl):
            raise HeartbeatReplayed(nonce)
        return machine_record_heartbeat(machine_id=machine_id, at=at, facts=facts)


def _claim_nonce_in_database(nonce: str, at: datetime, ttl: int) -> bool:
    expires_at = at + timedelta(seconds=max(1, ttl))
    try:
        with transaction.atomic():  # a savepoint: the unique violation must not end the caller's transaction
            HeartbeatNonce.objects.create(key=_nonce_key(nonce), expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def heartbeat_nonces_purge(*, now: datetime) -> int:
    """Delete the database nonces whose tokens have expired (their replays fail the expiry check anyway)."""
    deleted, _ = HeartbeatNonce.objects.filter(expires_at__lt=now).delete()
    return deleted


def _parse(raw: list[str], now: datetime) -> list[PendingHeartbeat]:
    rows = []
    for field, value in zip(raw[::2], raw[1::2], strict=True):
        try:
            data = json.loads(value)
            at = datetime.fromisoformat(data["at"])
            facts = {k: v for k, v in (data.get("f") or {}).items() if k in FACT_FIELDS}
            rows.append(PendingHeartbeat(int(field), min(at, now), facts))
        except (ValueError, KeyError, TypeError):
            logger.error("dropping malformed pending heartbeat %r: %r", field, value)
    return rows


def heartbeat_flush(*, now: datetime | None = None) -> int:
    """Write every pending heartbeat to the database (one bulk UPDATE); returns how many were pending.

    A heartbeat is never recorded later than ``now`` (default: the current time). Without Redis (not configured,
    or not answering) there is nothing to flush and this returns 0.
    """
    if not buffering_enabled():
        return 0
    now = now or timezone.now()
    url = _redis_url()
    keys = _keys()
    try:
        scripts = _client(url)
        drain, finish, finish_fields = scripts.drain, scripts.finish, scripts.finish_fields
        generation, raw = drain(
            keys=[keys.pending, keys.processing, keys.generation, keys.lease],
            args=[max(1, int(flush_interval() * 1000))],
        )
    except redis.RedisError as exc:
        logger.warning("heartbeat flush: Redis at %s unavailable (%s)", url, exc)
        return 0
    if not raw:
        return 0
    rows = _parse(raw, now)
    if rows:
        heartbeats_write(rows=rows)
    # Only now that the database has them: forget them (unless another flush merged newer ones in meanwhile).
    try:
        if not finish(keys=[keys.processing, keys.generation], args=[generation]):
            finish_fields(keys=[keys.processing], args=raw)
    except redis.RedisError as exc:
        logger.warning("heartbeat flush: could not clear the processing hash (%s); it is written again next time", exc)
    return len(rows)


def heartbeats_write(*, rows: list[PendingHeartbeat]) -> int:
    """One bulk UPDATE for machines still recorded Connected, then ``machine_record_heartbeat`` for the others
    (rare: recorded Offline/Expired while the heartbeat waited). Returns the number of machines written."""
    by_id: dict[int, PendingHeartbeat] = {}
    for row in rows:  # one per machine already (a hash field), but stay safe
        if row.machine_id not in by_id or by_id[row.machine_id].at < row.at:
            by_id[row.machine_id] = row
    updated = _bulk_update(list(by_id.values()))
    missed = set(by_id) - updated
    written = len(updated)
    if missed:
        others = (
            Machine.objects.filter(pk__in=missed).exclude(status=rules.CONNECTED).values_list("pk", "last_heartbeat_at")
        )
        for machine_id, last in others:
            row = by_id[machine_id]
            if last is None or last < row.at:
                written += _record_transition(row)
    return written


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
