"""Abuse limits of the public sign-in endpoints, counted by django-ratelimit in the Django cache (Redis in production).

* Sign-in (the token endpoint's client credentials, the portal's sign-in page): *failed* attempts are counted per
  client IP (``ARC_RATE_LIMIT_SIGNIN_PER_IP``, one bucket for both endpoints) and per account
  (``ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT``: the client id, or the user name). Once a bucket is full, every attempt is
  refused before any password hash runs, until its window ends. Successful sign-ins are not counted: at-scale
  onboarding signs in once per server with one principal, often from one NAT address.
* ``/devicecode``: every request is counted per IP (``ARC_RATE_LIMIT_DEVICECODE_PER_IP``); each one stores a row.

Rates are django-ratelimit's ``count/[n]period`` (``10/10m``: ten per ten-minute window). When the cache does not
answer, ``LimiterUnavailable`` is raised: callers refuse with 503 (fail closed), never check a password blind and
never answer 500. The embedded file cache counts per process approximately (its increments are not atomic across
processes); Redis counts exactly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

UNAVAILABLE_RETRY_AFTER = 30


class RateLimited(Exception):
    """A bucket is full: answer 429 with ``Retry-After: retry_after``."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class LimiterUnavailable(Exception):
    """The cache that counts does not answer: answer 503, the limit is not skipped."""

    status = 503
    retry_after = UNAVAILABLE_RETRY_AFTER


@dataclass(frozen=True)
class Bucket:
    """One counter: ``group`` (what is limited), ``rate_setting`` (the setting holding its rate), ``value`` (whose)."""

    group: str
    rate_setting: str
    value: str


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind the trusted TLS proxy (``DJANGO_BEHIND_TLS_PROXY``) the last
    ``X-Forwarded-For`` entry, the one that proxy appended. IPv6 clients count per /64, as django-ratelimit does."""
    address = request.META.get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and forwarded:
        address = forwarded.split(",")[-1].strip()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def signin_buckets(request, *, account: str) -> list[Bucket]:
    """The buckets of one sign-in attempt: the client's IP, and ``account`` (``client:<id>``, ``user:<name>``)."""
    return [
        Bucket("signin:ip", "ARC_RATE_LIMIT_SIGNIN_PER_IP", client_ip(request)),
        Bucket("signin:account", "ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT", account.casefold()[:300]),
    ]


def devicecode_buckets(request) -> list[Bucket]:
    return [Bucket("devicecode:ip", "ARC_RATE_LIMIT_DEVICECODE_PER_IP", client_ip(request))]


def _usage(request, bucket: Bucket, *, increment: bool) -> dict:
    try:
        usage = get_usage(
            request,
            group=bucket.group,
            key=lambda _group, _request: bucket.value,
            rate=getattr(settings, bucket.rate_setting),
            increment=increment,
        )
    except (RedisError, OSError) as exc:
        raise LimiterUnavailable from exc
    if usage is None:  # RATELIMIT_ENABLE = False
        return {"count": 0, "limit": 1, "time_left": 0}
    if usage["time_left"] < 0:  # django-ratelimit's answer when the cache returned nothing
        raise LimiterUnavailable
    return usage


def limits_check(request, buckets: Sequence[Bucket]) -> None:
    """Before an attempt: ``RateLimited`` if any bucket is already full (nothing is counted)."""
    for bucket in buckets:
        usage = _usage(request, bucket, increment=False)
        if usage["count"] >= usage["limit"]:
            raise RateLimited(max(1, int(usage["time_left"])))


def limits_count(request, buckets: Sequence[Bucket]) -> None:
    """After a failed attempt: count it in every bucket."""
    for bucket in buckets:
        _usage(request, bucket, increment=True)


def limits_hit(request, buckets: Sequence[Bucket]) -> None:
    """Count this request in every bucket, then ``RateLimited`` if any is over its limit."""
    retry_after = 0
    for bucket in buckets:
        usage = _usage(request, bucket, increment=True)
        if usage["count"] > usage["limit"]:
            retry_after = max(retry_after, int(usage["time_left"]), 1)
    if retry_after:
        raise RateLimited(retry_after)
