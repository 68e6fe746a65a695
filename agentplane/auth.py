"""Authentication of the agent plane: the machine JWT a heartbeat carries (its own scheme, not the ARM bearer token).

``Authorization: Bearer <JWT>`` signed RS256 by the machine key, header ``x5t`` = the certificate thumbprint
(base64url SHA-1, or 40 hex digits), claims ``sub``/``vmId``, ``iat``, ``exp`` (at most 5 minutes after ``iat``),
unique ``jti`` and ``bodySha256`` (base64url SHA-256 of the exact body bytes). ``verify_heartbeat`` checks all of it
against the machine the path names and raises ``HeartbeatRejected`` (an ``ArmError``: the views render it through
``arcportal.arm.errors`` like every refusal of the plane). The replay check (``jti``) is made when the heartbeat is
recorded (``machines.heartbeats.heartbeat_ingest``), in the same Redis round trip as the write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
from django.http import HttpRequest

from arcportal.arm.errors import ArmError
from machines.heartbeat_replay import CLOCK_SKEW_SECONDS, MAX_TOKEN_LIFETIME_SECONDS
from machines.keys import load_public_key_b64
from machines.selectors import machine_is_expired

__all__ = ["CLOCK_SKEW_SECONDS", "MAX_TOKEN_LIFETIME_SECONDS", "HeartbeatRejected", "verify_heartbeat"]

PUBLIC_KEY_CACHE_SIZE = 4096  # parsed machine keys kept per worker process (LRU)


class HeartbeatRejected(ArmError):
    """A heartbeat that is not let in: 401 (token), 403 (expired); nothing about the machine changes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code, status=status)


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def thumbprint_from_x5t(x5t: str) -> str | None:
    """``x5t`` (base64url SHA-1, RFC 7515 §4.1.7) or 40 hex digits → upper-case hex thumbprint."""
    if len(x5t) == 40:
        try:
            return bytes.fromhex(x5t).hex().upper()
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.hex().upper() if len(raw) == 20 else None


def bearer_token(request: HttpRequest) -> str:
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def parse_vm_id(vm_id: str) -> str | None:
    try:
        return str(uuid.UUID(vm_id))
    except ValueError:
        return None


@lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)
def _machine_public_key(thumbprint: str, public_key_b64: str):
    """The machine's parsed public key, per (certificate thumbprint, registered key): parsing the DER costs more
    than verifying the signature. A re-registration or a new certificate changes the cache key, so a stale key is
    never used; errors (ValueError) are not cached."""
    return load_public_key_b64(public_key_b64)


def verify_heartbeat(*, machine, token: str, body: bytes, vm_id: str, now: datetime) -> dict[str, Any]:
    """Check a heartbeat JWT against the machine it claims to be; returns its claims or raises HeartbeatRejected.

    The token is parsed once: the signature is verified with the machine's registered key, then the header's
    thumbprint is compared. A token that fails the signature and also names another certificate is reported as
    ``UnknownThumbprint``, as before the signature is looked at."""
    if not machine.certificate_thumbprint:
        raise HeartbeatRejected(401, "UnknownThumbprint", "This machine has no identity certificate yet.")
    expected = machine.certificate_thumbprint.upper()
    try:
        key = _machine_public_key(expected, machine.client_public_key)
        decoded = jwt.decode_complete(
            token,
            key=key,
            algorithms=["RS256"],
            options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": False, "verify_aud": False},
        )
    except jwt.InvalidAlgorithmError as exc:
        raise HeartbeatRejected(401, "InvalidToken", "The heartbeat token must be signed with RS256.") from exc
    except jwt.InvalidSignatureError as exc:
        _check_thumbprint(_unverified_header(token), expected)
        raise HeartbeatRejected(401, "InvalidSignature", f"The heartbeat signature is not valid: {exc}") from exc
    except jwt.DecodeError as exc:
        raise HeartbeatRejected(401, "InvalidToken", f"The heartbeat token is not a JWT: {exc}") from exc
    except jwt.PyJWTError as exc:  # a required claim is missing
        raise HeartbeatRejected(401, "InvalidToken", f"The heartbeat token is not valid: {exc}") from exc
    except ValueError as exc:  # the registered key does not parse: no signature can be valid
        raise HeartbeatRejected(401, "InvalidSignature", f"The heartbeat signature is not valid: {exc}") from exc
    _check_thumbprint(decoded["header"], expected)
    claims = decoded["payload"]
    try:
        iat, exp = int(claims["iat"]), int(claims["exp"])
    except (TypeError, ValueError) as exc:
        raise HeartbeatRejected(401, "InvalidToken", "iat and exp must be numbers.") from exc
    stamp = int(now.timestamp())
    if exp - iat > MAX_TOKEN_LIFETIME_SECONDS:
        raise HeartbeatRejected(401, "TokenLifetimeTooLong", "A heartbeat token may live at most 5 minutes.")
    if exp <= stamp - CLOCK_SKEW_SECONDS or iat > stamp + CLOCK_SKEW_SECONDS:
        raise HeartbeatRejected(401, "TokenExpired", "The heartbeat token has expired (or is not valid yet).")
    if str(claims.get("sub", "")).lower() != vm_id.lower() or str(claims.get("vmId", vm_id)).lower() != vm_id.lower():
        raise HeartbeatRejected(401, "InvalidToken", "The heartbeat token was issued for another machine.")
    if claims.get("bodySha256") != b64url_sha256(body):
        raise HeartbeatRejected(401, "BodyMismatch", "The heartbeat body does not match the signed hash.")
    if machine.certificate_expires_at and machine.certificate_expires_at <= now:
        raise HeartbeatRejected(
            403, "Expired", "The machine's identity certificate has expired. Disconnect and connect the agent again."
        )
    if machine_is_expired(last_heartbeat_at=machine.last_heartbeat_at, now=now):
        raise HeartbeatRejected(
            403,
            "Expired",
            "The machine has not sent a heartbeat for too long and is Expired: its heartbeats are refused until it "
            "is connected again ('azcmagent disconnect --force-local-only', then 'azcmagent connect').",
        )
    return claims


def replay_window_seconds(claims: dict[str, Any], now: datetime) -> int:
    """How long the token's jti must be remembered: until the token can no longer pass the expiry check."""
    return max(1, int(claims["exp"]) - int(now.timestamp()) + CLOCK_SKEW_SECONDS)


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return {}


def _check_thumbprint(header: dict[str, Any], expected: str) -> None:
    thumbprint = thumbprint_from_x5t(str(header.get("x5t") or ""))
    if not thumbprint:
        raise HeartbeatRejected(401, "InvalidToken", "The heartbeat token has no certificate thumbprint (x5t).")
    if thumbprint != expected:
        raise HeartbeatRejected(
            401, "UnknownThumbprint", f"No identity certificate with thumbprint {thumbprint} belongs to this machine."
        )


def verify_request(*, machine, token: str, body: bytes, vm_id: str, now: datetime, method: str, path: str):
    """A request-bound machine JWT (goal state, status reports): everything ``verify_heartbeat`` checks, plus
    ``htm``/``htu`` naming exactly this request (required), so a token is good for one request only."""
    claims = verify_heartbeat(machine=machine, token=token, body=body, vm_id=vm_id, now=now)
    if claims.get("htm") != method.upper() or claims.get("htu") != path:
        raise HeartbeatRejected(
            401, "InvalidToken", "The machine token is bound to another request (htm/htu must name this one)."
        )
    return claims
