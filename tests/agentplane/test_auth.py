"""The agent plane's own authentication (``agentplane.auth``): the machine JWT of heartbeats. Pure parts first, then
every refusal of ``verify_heartbeat`` against a registered machine."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
from azcmagent import identity
from django.utils import timezone

from agentplane import auth
from arcportal.arm.errors import ArmError
from machines import heartbeat_replay


def test_x5t_is_read_as_base64url_sha1_or_40_hex_digits():
    digest = hashlib.sha1(b"certificate").digest()  # noqa: S324 - a thumbprint, as the agent computes it
    b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert auth.thumbprint_from_x5t(b64) == digest.hex().upper()
    assert auth.thumbprint_from_x5t(digest.hex()) == digest.hex().upper()
    assert auth.thumbprint_from_x5t("not base64!") is None
    assert auth.thumbprint_from_x5t(base64.urlsafe_b64encode(b"short").decode()) is None


def test_the_plane_allows_the_skew_and_lifetime_the_replay_store_remembers():
    """One definition: the replay check remembers a jti exactly as long as the plane accepts its token."""
    assert auth.CLOCK_SKEW_SECONDS is heartbeat_replay.CLOCK_SKEW_SECONDS
    assert auth.MAX_TOKEN_LIFETIME_SECONDS is heartbeat_replay.MAX_TOKEN_LIFETIME_SECONDS
    now = timezone.now()
    claims = {"exp": int(now.timestamp()) + 100}
    assert auth.replay_window_seconds(claims, now) == 100 + auth.CLOCK_SKEW_SECONDS


def test_a_rejection_is_an_arm_error_with_its_status_and_code():
    exc = auth.HeartbeatRejected(401, "TokenExpired", "expired")
    assert isinstance(exc, ArmError) and (exc.status, exc.code, exc.message) == (401, "TokenExpired", "expired")


@pytest.fixture
def machine():
    key = identity.new_key()
    thumbprint = "AB" * 20
    return (
        SimpleNamespace(
            certificate_thumbprint=thumbprint,
            client_public_key=identity.public_key_b64(key),
            certificate_expires_at=timezone.now() + timedelta(days=30),
            last_heartbeat_at=timezone.now(),
        ),
        key,
    )


def _token(key, *, vm_id: str, body: bytes, thumbprint: str = "AB" * 20, lifetime: int = 60, **claims) -> str:
    now = int(time.time())
    payload = {"sub": vm_id, "vmId": vm_id, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    payload["bodySha256"] = auth.b64url_sha256(body)
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"x5t": thumbprint})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("valid", None),
        ("other_key", "InvalidSignature"),
        ("other_thumbprint", "UnknownThumbprint"),
        ("other_machine", "InvalidToken"),
        ("other_body", "BodyMismatch"),
        ("too_long", "TokenLifetimeTooLong"),
        ("expired", "TokenExpired"),
        ("not_a_jwt", "InvalidToken"),
    ],
)
def test_every_refusal_of_a_heartbeat_token(machine, case, code):
    record, key = machine
    vm_id, body = str(uuid.uuid4()), b'{"agentVersion":"1.0"}'
    tokens = {
        "valid": lambda: _token(key, vm_id=vm_id, body=body),
        "other_key": lambda: _token(identity.new_key(), vm_id=vm_id, body=body),
        "other_thumbprint": lambda: _token(key, vm_id=vm_id, body=body, thumbprint="CD" * 20),
        "other_machine": lambda: _token(key, vm_id=str(uuid.uuid4()), body=body),
        "other_body": lambda: _token(key, vm_id=vm_id, body=b"{}"),
        "too_long": lambda: _token(key, vm_id=vm_id, body=body, lifetime=3600),
        "expired": lambda: _token(key, vm_id=vm_id, body=body, iat=int(time.time()) - 600, exp=int(time.time()) - 300),
        "not_a_jwt": lambda: "not-a-jwt",
    }
    now = timezone.now()
    if code is None:
        claims = auth.verify_heartbeat(machine=record, token=tokens[case](), body=body, vm_id=vm_id, now=now)
        assert claims["sub"] == vm_id
        return
    with pytest.raises(auth.HeartbeatRejected) as info:
        auth.verify_heartbeat(machine=record, token=tokens[case](), body=body, vm_id=vm_id, now=now)
    assert (info.value.status, info.value.code) == (401, code)


def _verify(record, key, vm_id: str, body: bytes, now):
    return auth.verify_heartbeat(
        machine=record, token=_token(key, vm_id=vm_id, body=body), body=body, vm_id=vm_id, now=now
    )


@pytest.mark.django_db
def test_an_expired_certificate_or_machine_is_403(machine):
    record, key = machine
    vm_id, body = str(uuid.uuid4()), b"{}"
    now = timezone.now()
    record.certificate_expires_at = now - timedelta(seconds=1)
    with pytest.raises(auth.HeartbeatRejected) as info:
        auth.verify_heartbeat(
            machine=record, token=_token(key, vm_id=vm_id, body=body), body=body, vm_id=vm_id, now=now
        )
    assert (info.value.status, info.value.code) == (403, "Expired")
    record.certificate_expires_at = now + timedelta(days=1)
    record.last_heartbeat_at = now - timedelta(days=60)
    with pytest.raises(auth.HeartbeatRejected) as info:
        auth.verify_heartbeat(
            machine=record, token=_token(key, vm_id=vm_id, body=body), body=body, vm_id=vm_id, now=now
        )
    assert (info.value.status, info.value.code) == (403, "Expired")
