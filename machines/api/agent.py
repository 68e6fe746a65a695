"""Agent plane (``/his/machines/{vmId}/…``): the identity certificate and signed heartbeats.

* ``POST …/certificate`` — bearer token of the principal that registered the machine + a CSR signed by the machine
  key (proof of possession); answers the X.509 identity certificate issued by the portal CA (90 days).
* ``POST …/heartbeat`` — ``Authorization: Bearer <JWT>`` signed RS256 by the machine key, header ``x5t`` = the
  certificate thumbprint (base64url SHA-1, or 40 hex digits), claims ``sub``/``vmId``, ``iat``, ``exp`` (at most
  5 minutes after ``iat``), unique ``jti`` and ``bodySha256`` (base64url SHA-256 of the exact body bytes).
  Recorded through ``machines.heartbeats.heartbeat_ingest``: a status change is written at once with
  ``machine_record_heartbeat``; steady-state beats are buffered in Redis when it is configured.
  Failures answer 401 with a code (``InvalidToken``, ``UnknownThumbprint``, ``InvalidSignature``, ``TokenExpired``,
  ``BodyMismatch``, ``ReplayedToken``), 400 ``InvalidRequestContent`` for a body that is not a JSON object or
  carries text no database can store (NUL, lone surrogates, nesting deeper than 4, over 64 KiB: ``arcportal.
  textguard``), 503 ``ReplayCheckUnavailable`` for a token issued before a Redis outage this process can't look
  past (``machines.heartbeat_replay``; retry with a fresh token), 410 ``MachineDeleted`` when no machine has that
  vmId any more, 403
  ``Expired`` when the certificate expired or the machine is Expired (no heartbeat for ``ARC_EXPIRED_AFTER_DAYS``,
  until it is registered again); nothing about the machine changes on any failure.
  Hot path: one precompiled indexed query (``selectors_agent.machine_for_heartbeat``), the JWT parsed once with
  parsed keys cached per (thumbprint, key), then one Redis round trip that claims the jti and buffers the beat.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from arcportal import authz, textguard
from arcportal.exceptions import ApplicationError
from machines.heartbeats import FACT_LIMITS, HeartbeatNotVerifiable, HeartbeatReplayed, heartbeat_ingest
from machines.services import (
    load_public_key_b64,
    machine_heartbeat_facts,
    machine_is_expired,
    machine_issue_certificate,
)
from onboarding import selectors_agent as selectors

MAX_TOKEN_LIFETIME_SECONDS = 300
CLOCK_SKEW_SECONDS = 60
MAX_BODY_BYTES = 64 * 1024
PUBLIC_KEY_CACHE_SIZE = 4096  # parsed machine keys kept per worker process (LRU)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _b64url_sha256(data: bytes) -> str:
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


# --- Heartbeat -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)
def _machine_public_key(thumbprint: str, public_key_b64: str):
    """The machine's parsed public key, per (certificate thumbprint, registered key): parsing the DER costs more
    than verifying the signature. A re-registration or a new certificate changes the cache key, so a stale key is
    never used; errors (ValueError) are not cached."""
    return load_public_key_b64(public_key_b64)


class HeartbeatRejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def verify_heartbeat(*, machine, token: str, body: bytes, vm_id: str, now: datetime) -> dict[str, Any]:
    """Check a heartbeat JWT against the machine it claims to be; returns its claims or raises HeartbeatRejected.

    The token is parsed once: the signature is verified with the machine's registered key, then the header's
    thumbprint is compared. A token that fails the signature and also names another certificate is reported as
    ``UnknownThumbprint``, as before the signature is looked at. The replay check (``jti``) is not made here: it is
    part of recording the heartbeat (``heartbeat_ingest``), in the same Redis round trip as the write."""
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
    if claims.get("bodySha256") != _b64url_sha256(body):
        raise HeartbeatRejected(401, "BodyMismatch", "The heartbeat body does not match the signed hash.")
    if machine.certificate_expires_at and machine.certificate_expires_at <= now:
        raise HeartbeatRejected(
            403, "Expired", "The machine's identity certificate has expired. Disconnect and connect the agent again."
        )
    if machine_is_expired(machine, now):
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


def _bearer(request: HttpRequest) -> str:
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _parse_vm_id(vm_id: str) -> str | None:
    try:
        return str(uuid.UUID(vm_id))
    except ValueError:
        return None


@csrf_exempt
@require_POST
def machine_heartbeat(request: HttpRequest, vm_id: str) -> JsonResponse:
    """Record a heartbeat; answers ``{"status": "Connected", "nextHeartbeatSeconds": N}``."""
    vm = _parse_vm_id(vm_id)
    if vm is None:
        return _error(400, "InvalidVmId", "The vmId in the path is not a GUID.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "BodyTooLarge", "The heartbeat body is too large.")
    token = _bearer(request)
    if not token:
        return _error(401, "InvalidToken", "A heartbeat needs 'Authorization: Bearer <machine JWT>'.")
    machine = selectors.machine_for_heartbeat(vm_id=vm)
    if machine is None:
        return _error(
            410,
            "MachineDeleted",
            f"No machine with vmId {vm} exists: it was deleted or re-onboarded. Run 'azcmagent disconnect "
            "--force-local-only' and connect again.",
        )
    now = timezone.now()
    try:
        claims = verify_heartbeat(machine=machine, token=token, body=body, vm_id=vm, now=now)
    except HeartbeatRejected as exc:
        return _error(exc.status, exc.code, exc.message)
    try:
        payload = textguard.json_loads(body or b"{}", limits=FACT_LIMITS)
    except textguard.TextRefused as exc:
        return _error(400, "InvalidRequestContent", f"The heartbeat body was refused: {exc}")
    if not isinstance(payload, dict):
        return _error(400, "InvalidRequestContent", "The heartbeat body must be a JSON object.")
    try:
        status = heartbeat_ingest(
            machine_id=machine.pk,
            recorded_status=machine.status,
            at=now,
            facts=machine_heartbeat_facts(payload),
            known=machine,
            nonce=f"{vm}:{claims['jti']}",
            nonce_ttl=replay_window_seconds(claims, now),
            issued_at=int(claims["iat"]),
        )
    except textguard.TextRefused as exc:
        return _error(400, "InvalidRequestContent", f"The heartbeat body was refused: {exc}")
    except HeartbeatReplayed:
        return _error(401, "ReplayedToken", "This heartbeat token was already used (jti seen before).")
    except HeartbeatNotVerifiable:
        response = _error(
            503,
            "ReplayCheckUnavailable",
            "This heartbeat token was issued before an outage of the portal's replay store and can't be checked; "
            "send the next heartbeat with a fresh token.",
        )
        response["Retry-After"] = "5"
        return response
    except ApplicationError:
        return _error(410, "MachineDeleted", f"No machine with vmId {vm} exists any more.")
    return JsonResponse({"status": status, "nextHeartbeatSeconds": settings.ARC_HEARTBEAT_INTERVAL_SECONDS})


# --- Identity certificate --------------------------------------------------------------------------------------


class MachineCertificateApi(APIView):
    """``POST /his/machines/{vmId}/certificate`` with ``{"csr": "<PEM>"}`` → ``{"certificate": "<PEM>",
    "thumbprint": …, "notAfter": …}``. Authenticated by the bearer token (ARM authentication); the CSR proves the
    caller holds the private key the machine registered."""

    @extend_schema(
        operation_id="MachineCertificate_Issue",
        request=inline_serializer("MachineCertificateRequest", {"csr": serializers.CharField()}),
        responses=inline_serializer(
            "MachineCertificate",
            {
                "certificate": serializers.CharField(),
                "thumbprint": serializers.CharField(),
                "notAfter": serializers.DateTimeField(),
                "vmId": serializers.UUIDField(),
            },
        ),
    )
    def post(self, request, vm_id: str):
        vm = _parse_vm_id(vm_id)
        machine = selectors.machine_by_vm_id(vm_id=vm) if vm else None
        if machine is None:
            return Response({"error": {"code": "ResourceNotFound", "message": f"No machine has vmId {vm_id}."}}, 404)
        principal = request.user
        if not authz.can(principal, authz.ONBOARD, machine.arm_id):
            return Response(
                {"error": {"code": "AuthorizationFailed", "message": "The caller may not onboard this machine."}},
                status=403,
            )
        # The ARM PUT recorded str(principal): the user name, or the service principal's appId.
        if machine.onboarded_by and str(principal) != machine.onboarded_by:
            return Response(
                {
                    "error": {
                        "code": "AuthorizationFailed",
                        "message": "Only the principal that registered the machine may fetch its certificate.",
                    }
                },
                status=403,
            )
        csr_pem = request.data.get("csr") if isinstance(request.data, dict) else None
        try:
            csr = x509.load_pem_x509_csr(str(csr_pem or "").encode())
        except ValueError:
            return Response({"error": {"code": "InvalidCsr", "message": "csr must be a PEM certificate request."}}, 400)
        if not csr.is_signature_valid:
            return Response(
                {"error": {"code": "InvalidCsr", "message": "The CSR is not signed by its own key."}}, status=400
            )
        spki = csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            issued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=base64.b64encode(spki).decode())
        except ApplicationError as exc:
            return Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        return Response(
            {
                "certificate": issued.pem.decode(),
                "thumbprint": issued.thumbprint,
                "notAfter": issued.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "vmId": str(machine.vm_id),
            }
        )
