"""Device authorization codes (RFC 8628). Pure: no Django import, time comes in as an argument.

The *device code* is a high-entropy secret only the device holds (stored hashed); the *user code* is what a person
types on ``/devicelogin``: eight characters from an alphabet without look-alikes, shown as ``XXXX-XXXX`` and
accepted in any case, with or without the dash or spaces (RFC 8628 §6.1).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# Upper-case letters and digits without 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V: nothing a person can misread or mistype.
USER_CODE_ALPHABET = "34679ACDEFGHJKMNPQRTWXY"
USER_CODE_GROUP = 4
USER_CODE_LENGTH = 8

DEFAULT_TTL = timedelta(minutes=15)
DEFAULT_INTERVAL = timedelta(seconds=5)
# RFC 8628 §3.5: "slow_down" — the client must add 5 seconds to its interval from then on.
SLOW_DOWN_STEP = timedelta(seconds=5)
MAX_INTERVAL = timedelta(seconds=60)


def new_user_code(*, randbelow=secrets.randbelow) -> str:
    """A fresh user code in display form, e.g. ``WDJH-MJHT``."""
    raw = "".join(USER_CODE_ALPHABET[randbelow(len(USER_CODE_ALPHABET))] for _ in range(USER_CODE_LENGTH))
    return format_user_code(raw)


def format_user_code(raw: str) -> str:
    """``WDJHMJHT`` → ``WDJH-MJHT``."""
    return "-".join(raw[i : i + USER_CODE_GROUP] for i in range(0, len(raw), USER_CODE_GROUP))


def normalize_user_code(typed: str) -> str | None:
    """What a person typed → the canonical display form, or ``None`` if it cannot be a user code.

    Case, dashes and whitespace are ignored. Characters outside the alphabet make it invalid (no guessing).
    """
    cleaned = "".join(ch for ch in typed.upper() if ch not in "- \t\r\n")
    if len(cleaned) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in cleaned):
        return None
    return format_user_code(cleaned)


def new_device_code() -> str:
    """The device's secret: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_device_code(device_code: str) -> str:
    """SHA-256 hex of a device code: how it is stored and looked up (it has enough entropy not to need a salt)."""
    return hashlib.sha256(device_code.encode()).hexdigest()


def expires_at(*, now: datetime, ttl: timedelta = DEFAULT_TTL) -> datetime:
    return now + ttl


def expires_in_seconds(*, now: datetime, expires: datetime) -> int:
    """Whole seconds left, never negative."""
    return max(0, int((expires - now).total_seconds()))


def is_expired(*, now: datetime, expires: datetime) -> bool:
    """Expired at the instant ``expires`` itself (the code is valid strictly before it)."""
    return now >= expires


@dataclass(frozen=True)
class PollVerdict:
    """The outcome of a poll's timing: ``too_fast`` means answer ``slow_down`` and use ``interval`` from now on."""

    too_fast: bool
    interval: timedelta


def check_poll(*, now: datetime, last_polled_at: datetime | None, interval: timedelta) -> PollVerdict:
    """RFC 8628 §3.5: a poll sooner than ``interval`` after the previous one gets ``slow_down`` and a longer
    interval (capped at ``MAX_INTERVAL``). The first poll is never too fast."""
    if last_polled_at is not None and now - last_polled_at < interval:
        return PollVerdict(too_fast=True, interval=min(interval + SLOW_DOWN_STEP, MAX_INTERVAL))
    return PollVerdict(too_fast=False, interval=interval)


def sign_in_message(*, verification_uri: str, user_code: str) -> str:
    """The sentence the agent prints (the wording Microsoft's tools use)."""
    return (
        f"To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} "
        "to authenticate."
    )
