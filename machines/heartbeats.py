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

Poison: text a database can't store (NUL, lone surrogates) is refused at the agent plane (400) and again here
(``arcportal.textguard``); a row the database still refuses is isolated by ``heartbeat_writes`` and, like a
malformed entry, moved to a bounded dead-letter list (``<base>dead``) and logged, so the rest of the batch lands.
The replay check across Redis outages is ``machines.heartbeat_replay``.

Crash safety: a flush first moves the pending hash to a processing hash (Lua, atomic: ``RENAME``, or a merge when
a processing hash is left over), writes the database, and only then deletes what it wrote from the processing
hash. A flush that dies in between leaves the processing hash; the next flush merges the new heartbeats into it
and writes them all. The bulk UPDATE is idempotent (``last_heartbeat_at < v.at``), so a heartbeat written twice is
harmless. Concurrent flushes are safe for the same reason; a generation counter keeps one flush from deleting
entries another flush merged in after it drained.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from arcportal import textguard
from machines import heartbeat_replay as replay
from machines import status as rules
from machines.heartbeat_facts import FACT_FIELDS, FACT_LIMITS
from machines.heartbeat_replay import (
    REDIS_DOWN_BACKOFF_SECONDS,
    REDIS_SOCKET_TIMEOUT_SECONDS,
    HeartbeatNotVerifiable,
    HeartbeatReplayed,
    heartbeat_nonces_purge,
)
from machines.heartbeat_writes import PendingHeartbeat, dead_letter, heartbeats_write, parse_entries
from machines.models import Machine
from machines.services.transitions import machine_record_heartbeat

logger = logging.getLogger(__name__)

__all__ = [
    "FACT_FIELDS",
    "HeartbeatNotVerifiable",
    "HeartbeatReplayed",
    "PendingHeartbeat",
    "heartbeat_flush",
    "heartbeat_ingest",
    "heartbeat_nonces_purge",
    "heartbeats_write",
]

# KEYS: jti, pending, lease, outage record — ARGV: jti lifetime in s (0: no replay check), buffer (1/0), field,
# entry, lease in ms, the token's iat ('' = unknown), 1 when the database was checked already, skew, margin.
# Returns -1 when the jti was seen before (nothing written), -3 when the token must be checked in the database
# first and -4 when it can't be verified (heartbeat_replay, rules 2 and 3), else 1 when this request won the
# flush lease, else 0.
_ACCEPT = """
if ARGV[6] ~= '' and ARGV[7] == '0' then
  local record = redis.call('HMGET', KEYS[4], 'start', 'end')
  local iat = tonumber(ARGV[6])
  if record[1] and iat < tonumber(record[1]) + tonumber(ARGV[8]) then
    return -4
  end
  if record[2] and iat < tonumber(record[2]) + tonumber(ARGV[9]) then
    return -3
  end
end
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
    outage: str
    dead: str

    def nonce(self, nonce: str) -> str:
        return f"{self.base}jti:{replay.nonce_key(nonce)}"


class _Redis(NamedTuple):
    """A process's heartbeat connection and the Lua scripts registered on it."""

    client: redis.Redis
    drain: Any
    finish: Any
    finish_fields: Any
    accept: Any
    outage_merge: Any


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
            base,
            base + "pending",
            base + "processing",
            base + "generation",
            base + "lease",
            base + "outage",
            base + "dead",
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
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            decode_responses=True,
            encoding_errors="replace",  # bytes written around the portal must not make every drain fail
            retry_on_timeout=False,
            single_connection_client=True,
        )
        found = _Redis(
            client,
            client.register_script(_DRAIN),
            client.register_script(_FINISH),
            client.register_script(_FINISH_FIELDS),
            client.register_script(_ACCEPT),
            client.register_script(replay.OUTAGE_MERGE),
        )
        _clients[url] = found
    return found


def _redis_usable(url: str) -> bool:
    return time.monotonic() >= _down_until.get(url, 0.0)


def _redis_failed(url: str, exc: Exception) -> None:
    _down_until[url] = time.monotonic() + REDIS_DOWN_BACKOFF_SECONDS
    replay.redis_failed(url)
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
    issued_at: int | None = None,
) -> str:
    """Accept an authenticated heartbeat; returns the machine's status after it (always Connected).

    ``recorded_status`` is the machine's stored status as the caller loaded it; ``known`` (optional) is that
    loaded machine, so only facts that differ from it are buffered. ``nonce`` (e.g. ``<vmId>:<jti>``) is claimed for
    ``nonce_ttl`` seconds before anything is recorded: a nonce claimed before raises ``HeartbeatReplayed``;
    ``issued_at`` (the token's ``iat``) lets the claim cross Redis outages (``heartbeat_replay``), and a token that
    can't be checked raises ``HeartbeatNotVerifiable``. Facts with text no database can store raise
    ``textguard.TextRefused`` (nothing recorded). A status change is written at once (``machine_record_heartbeat``);
    a steady-state heartbeat goes to Redis unless Redis is off or down. Raises ``NotFound`` (from the direct write)
    when the machine no longer exists.
    """
    facts = dict(facts or {})
    textguard.check_json_value(facts, limits=FACT_LIMITS)
    url = _redis_url()
    if not buffering_enabled() or not _redis_usable(url):
        return _direct(machine_id=machine_id, at=at, facts=facts, nonce=nonce, nonce_ttl=nonce_ttl, issued_at=issued_at)
    buffer = recorded_status == rules.CONNECTED
    keys = _keys()
    entry = (
        json.dumps({"at": at.isoformat(), "f": _changed_facts(facts, known)}, separators=(",", ":")) if buffer else ""
    )
    ttl = max(1, nonce_ttl) if nonce else 0
    iat = "" if issued_at is None or not nonce else str(int(issued_at))
    lease = int(flush_interval() * 1000) or 1
    skew, margin = replay.CLOCK_SKEW_SECONDS, replay.RECOVERY_MARGIN_SECONDS
    try:
        scripts = _client(url)
        if replay.outage_began(url) is not None:  # first call since Redis failed: publish the outage first
            replay.recovered(url, scripts.outage_merge, keys.outage)
        args = [ttl, int(buffer), machine_id, entry, lease, iat, 0, skew, margin]
        outcome = scripts.accept(keys=[keys.nonce(nonce), keys.pending, keys.lease, keys.outage], args=args)
        if outcome == -3:  # issued around an outage: it may have been claimed in the database (rule 2)
            if not replay.claim_in_database(nonce, at, ttl, recheck=True):
                raise HeartbeatReplayed(nonce)
            args[6] = 1
            outcome = scripts.accept(keys=[keys.nonce(nonce), keys.pending, keys.lease, keys.outage], args=args)
    except redis.RedisError as exc:
        _redis_failed(url, exc)
        return _direct(machine_id=machine_id, at=at, facts=facts, nonce=nonce, nonce_ttl=nonce_ttl, issued_at=issued_at)
    if outcome == -1:
        raise HeartbeatReplayed(nonce)
    if outcome == -4:
        raise HeartbeatNotVerifiable(nonce)
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


def _direct(
    *, machine_id: int, at: datetime, facts: dict[str, Any], nonce: str, nonce_ttl: int, issued_at: int | None
) -> str:
    """Without Redis: claim the nonce in the database, then write the heartbeat (one transaction). While Redis is
    failing, a token issued before the outage began may have been claimed there: refused (rule 1)."""
    if nonce and replay.fallback_refuses(_redis_url(), issued_at):
        raise HeartbeatNotVerifiable(nonce)
    with transaction.atomic():
        if nonce and not replay.claim_in_database(nonce, at, nonce_ttl):
            raise HeartbeatReplayed(nonce)
        return machine_record_heartbeat(machine_id=machine_id, at=at, facts=facts)


def heartbeat_flush(*, now: datetime | None = None) -> int:
    """Write every pending heartbeat to the database (one bulk UPDATE); returns how many were pending.

    A heartbeat is never recorded later than ``now`` (default: the current time). Without Redis (not configured,
    or not answering) there is nothing to flush and this returns 0. Entries that can't be written (malformed,
    refused text, or refused by the database) are dead-lettered and logged; the others are written.
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
        replay.publish_database_claims(url, scripts.outage_merge, keys.outage)
    except redis.RedisError as exc:
        logger.warning("heartbeat flush: Redis at %s unavailable (%s)", url, exc)
        return 0
    if not raw:
        return 0
    rows, bad = parse_entries(raw, now, limits=FACT_LIMITS)
    rejected: list[tuple[PendingHeartbeat, str]] = []
    if rows:
        heartbeats_write(rows=rows, rejected=rejected)
    if rejected:
        entries = dict(zip(raw[::2], raw[1::2], strict=True))
        bad += [(str(row.machine_id), entries.get(str(row.machine_id), ""), reason) for row, reason in rejected]
    # Only now that the database has them: forget them (unless another flush merged newer ones in meanwhile).
    try:
        if bad:
            dead_letter(scripts.client, keys.dead, bad, now)
        if not finish(keys=[keys.processing, keys.generation], args=[generation]):
            finish_fields(keys=[keys.processing], args=raw)
    except redis.RedisError as exc:
        logger.warning("heartbeat flush: could not clear the processing hash (%s); it is written again next time", exc)
    return len(rows) + len(bad)
