"""The heartbeat replay check across Redis outages (issue 10, item 15; docs/status-engine.md "Replays and outages").

A heartbeat token's ``jti`` is claimed once: in Redis (``SET NX`` inside the accept script, the one round trip of a
beat) or, while Redis is absent or failing, in the database (``HeartbeatNonce``). The two stores do not see each
other's claims, so a token used in one mode could be replayed in the other. Three rules close that, none of them
costing a steady-state beat anything beyond its one Redis round trip:

1. **Redis → database.** A process that falls back remembers when it first saw Redis fail (``outage_began``). In
   fallback it refuses, with 503 ``ReplayCheckUnavailable`` (the agent retries with a fresh token), every token
   issued before that moment plus the clock skew the agent plane allows: such a token may have been claimed in
   Redis, which it can't ask. Tokens issued later can only have been claimed in the database.
2. **Database → Redis.** Tokens claimed in the database are published to Redis as an *outage record* (a hash:
   ``end`` = the latest instant such a claim can have been made, ``start`` = when the outage began). The accept
   script reads it in the same round trip: a token issued before ``end`` + ``RECOVERY_MARGIN_SECONDS`` answers -3,
   and only then does the process claim the ``jti`` in the database too (refused there: a replay) before it claims
   it in Redis. The record is written by the process that sees Redis answer again, and by every flush while
   unexpired database claims exist (``publish_database_claims``), so processes that never saw the outage learn it
   within one flush interval.
3. **Redis lost its data** (a restart without persistence): tokens issued before the outage's ``start`` +
   skew are refused (-4 → 503) after it, because their claims may be gone.

The record expires once every token it covers has expired. Residual window, documented: a web process cut off
from Redis while the others reach it, for the flush interval before the next flush publishes its claims.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max

from machines.models import HeartbeatNonce

# The clock skew and token lifetime the agent plane allows (agentplane.auth reads them from here).
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LIFETIME_SECONDS = 300
REDIS_DOWN_BACKOFF_SECONDS = 5.0  # after a Redis error, write directly for this long before trying Redis again
REDIS_SOCKET_TIMEOUT_SECONDS = 2.0
# A process that fails just before Redis returns keeps claiming in the database for its backoff (after a timeout).
RECOVERY_MARGIN_SECONDS = int(REDIS_DOWN_BACKOFF_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS) + CLOCK_SKEW_SECONDS
# Until then every token the record covers has expired (issued ≤ end + margin, valid ≤ lifetime + skew after).
RECORD_TTL_SECONDS = RECOVERY_MARGIN_SECONDS + MAX_TOKEN_LIFETIME_SECONDS + 2 * CLOCK_SKEW_SECONDS

# KEYS: outage record — ARGV: start ('' = unknown), end, ttl. Merges: earliest start, latest end.
OUTAGE_MERGE = """
if ARGV[1] ~= '' then
  local start = redis.call('HGET', KEYS[1], 'start')
  if not start or tonumber(ARGV[1]) < tonumber(start) then
    redis.call('HSET', KEYS[1], 'start', ARGV[1])
  end
end
local finish = redis.call('HGET', KEYS[1], 'end')
if not finish or tonumber(ARGV[2]) > tonumber(finish) then
  redis.call('HSET', KEYS[1], 'end', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

# Per process: URL → wall-clock time (s) of the first Redis failure since the last success.
_outage_began: dict[str, float] = {}
# Per process: the latest database-claim horizon published to Redis (so a flush publishes only what is new).
_published_end: dict[str, float] = {}


class HeartbeatReplayed(Exception):
    """The heartbeat token's ``jti`` was used before: nothing was recorded."""


class HeartbeatNotVerifiable(Exception):
    """The token may have been claimed where this process can't look (Redis during an outage, or a Redis that lost
    its data): nothing was recorded; a fresh token will be accepted."""


def nonce_key(nonce: str) -> str:
    """The nonce itself, or its SHA-256 when it is long (a jti is the agent's choice): a bounded key."""
    return nonce if len(nonce) <= 100 else "sha256:" + hashlib.sha256(nonce.encode()).hexdigest()


def redis_failed(url: str) -> None:
    _outage_began.setdefault(url, time.time())


def outage_began(url: str) -> float | None:
    return _outage_began.get(url)


def fallback_refuses(url: str, issued_at: int | None) -> bool:
    """Rule 1: in fallback, a token issued before the outage began (plus skew) may have been claimed in Redis."""
    began = _outage_began.get(url)
    return issued_at is not None and began is not None and issued_at < began + CLOCK_SKEW_SECONDS


def recovered(url: str, merge, outage_key: str) -> None:
    """Redis answers again: publish this process's outage (rules 2 and 3), then forget it."""
    began = _outage_began.get(url)
    if began is None:
        return
    merge(keys=[outage_key], args=[int(began), int(time.time()) + 1, RECORD_TTL_SECONDS])
    _outage_began.pop(url, None)


def claim_in_database(nonce: str, at: datetime, ttl: int, *, recheck: bool = False) -> bool:
    """Claim ``nonce`` in ``HeartbeatNonce``; False when it was claimed before (in the database)."""
    expires_at = at + timedelta(seconds=max(1, ttl))
    try:
        with transaction.atomic():  # a savepoint: the unique violation must not end the caller's transaction
            # A re-check (rule 2) is not evidence of an outage: it must not extend the published record.
            HeartbeatNonce.objects.create(key=nonce_key(nonce), expires_at=expires_at, in_fallback=not recheck)
    except IntegrityError:
        return False
    return True


def publish_database_claims(url: str, merge, outage_key: str) -> float | None:
    """Rule 2 for processes that never saw the outage: the latest expiry of the database claims made in fallback
    bounds when they were made; publish it as the record's ``end`` (one indexed aggregate per flush)."""
    latest = HeartbeatNonce.objects.filter(in_fallback=True).aggregate(latest=Max("expires_at")).get("latest")
    if latest is None:
        return None
    end = int(latest.timestamp()) + 1
    if end <= _published_end.get(url, 0) or end + RECORD_TTL_SECONDS < time.time():
        return None
    merge(keys=[outage_key], args=["", end, RECORD_TTL_SECONDS])
    _published_end[url] = end
    return end


def heartbeat_nonces_purge(*, now: datetime) -> int:
    """Delete the database nonces whose tokens have expired (their replays fail the expiry check anyway)."""
    deleted, _ = HeartbeatNonce.objects.filter(expires_at__lt=now).delete()
    return deleted
