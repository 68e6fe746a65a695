"""Agent plane (``/his/machines/{vmId}/…``): the identity certificate and signed heartbeats.

* ``POST …/certificate`` — bearer token of the principal that registered the machine (ARM authentication) + a CSR
  signed by the machine key (proof of possession); answers the X.509 identity certificate issued by the portal CA
  (90 days).
* ``POST …/heartbeat`` — authenticated by the machine JWT (``agentplane.auth``). Recorded through
  ``machines.heartbeats.heartbeat_ingest``: a status change is written at once with the status-transition writer;
  steady-state beats are buffered in Redis when it is configured. Failures answer 401 with a code
  (``InvalidToken``, ``UnknownThumbprint``, ``InvalidSignature``, ``TokenExpired``, ``BodyMismatch``,
  ``ReplayedToken``), 400 ``InvalidRequestContent`` for a body that is not a JSON object or carries text no database
  can store (NUL, lone surrogates, nesting deeper than 4, over 64 KiB: ``arcportal.textguard``), 503
  ``ReplayCheckUnavailable`` for a token issued before a Redis outage this process can't look past
  (``machines.heartbeat_replay``; retry with a fresh token), 410 ``MachineDeleted`` when no machine has that vmId any
  more, 403 ``Expired`` when the certificate expired or the machine is Expired (no heartbeat for
  ``ARC_EXPIRED_AFTER_DAYS``, until it is registered again); nothing about the machine changes on any failure.
  Hot path: one prepared, indexed query (``machines.heartbeat_reads.machine_for_heartbeat``), the JWT parsed once with
  parsed keys cached per (thumbprint, key), then one Redis round trip that claims the jti and buffers the beat.

Every refusal is an ``ArmError`` rendered by ``arcportal.arm.errors`` (``agent_plane_errors`` for the plain Django
view, DRF's exception handler for the certificate API): one error shape, written in one place.
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC

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

from agentplane.auth import bearer_token, parse_vm_id, replay_window_seconds, verify_heartbeat
from arcportal import authz, textguard
from arcportal.arm.errors import ArmError, arm_error_response
from arcportal.arm.views import ArmJSONRenderer
from arcportal.exceptions import ApplicationError
from machines.heartbeat_facts import FACT_LIMITS, machine_heartbeat_facts
from machines.heartbeat_reads import machine_for_heartbeat
from machines.heartbeats import HeartbeatNotVerifiable, HeartbeatReplayed, heartbeat_ingest
from machines.selectors import machine_by_vm_id
from machines.services import machine_issue_certificate

MAX_BODY_BYTES = 64 * 1024
REPLAY_RETRY_AFTER_SECONDS = 5


def agent_plane_errors(view):
    """Render the ``ArmError`` a plain Django view of the plane raises through ``arcportal.arm.errors``."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ArmError as exc:
            return arm_error_response(exc.code, exc.message, status=exc.status, target=exc.target, headers=exc.headers)

    return wrapper


def _machine_deleted(vm: str) -> ArmError:
    return ArmError(
        f"No machine with vmId {vm} exists: it was deleted or re-onboarded. Run 'azcmagent disconnect "
        "--force-local-only' and connect again.",
        code="MachineDeleted",
        status=410,
    )


def _refused_body(exc: textguard.TextRefused) -> ArmError:
    return ArmError(f"The heartbeat body was refused: {exc}", code="InvalidRequestContent", status=400)


# --- Heartbeat -----------------------------------------------------------------------------------------------


@csrf_exempt
@require_POST
@agent_plane_errors
def machine_heartbeat(request: HttpRequest, vm_id: str) -> JsonResponse:
    """Record a heartbeat; answers ``{"status": "Connected", "nextHeartbeatSeconds": N}``."""
    vm = parse_vm_id(vm_id)
    if vm is None:
        raise ArmError("The vmId in the path is not a GUID.", code="InvalidVmId", status=400)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise ArmError("The heartbeat body is too large.", code="BodyTooLarge", status=413)
    token = bearer_token(request)
    if not token:
        raise ArmError("A heartbeat needs 'Authorization: Bearer <machine JWT>'.", code="InvalidToken", status=401)
    machine = machine_for_heartbeat(vm_id=vm)
    if machine is None:
        raise _machine_deleted(vm)
    now = timezone.now()
    claims = verify_heartbeat(machine=machine, token=token, body=body, vm_id=vm, now=now)
    try:
        payload = textguard.json_loads(body or b"{}", limits=FACT_LIMITS)
    except textguard.TextRefused as exc:
        raise _refused_body(exc) from exc
    if not isinstance(payload, dict):
        raise ArmError("The heartbeat body must be a JSON object.", code="InvalidRequestContent", status=400)
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
        raise _refused_body(exc) from exc
    except HeartbeatReplayed as exc:
        raise ArmError(
            "This heartbeat token was already used (jti seen before).", code="ReplayedToken", status=401
        ) from exc
    except HeartbeatNotVerifiable as exc:
        raise ArmError(
            "This heartbeat token was issued before an outage of the portal's replay store and can't be checked; "
            "send the next heartbeat with a fresh token.",
            code="ReplayCheckUnavailable",
            status=503,
            headers={"Retry-After": str(REPLAY_RETRY_AFTER_SECONDS)},
        ) from exc
    except ApplicationError as exc:  # the direct write found no machine: deleted since it was read
        raise ArmError(f"No machine with vmId {vm} exists any more.", code="MachineDeleted", status=410) from exc
    return JsonResponse({"status": status, "nextHeartbeatSeconds": settings.ARC_HEARTBEAT_INTERVAL_SECONDS})


# --- Identity certificate --------------------------------------------------------------------------------------


class MachineCertificateApi(APIView):
    """``POST /his/machines/{vmId}/certificate`` with ``{"csr": "<PEM>"}`` → ``{"certificate": "<PEM>",
    "thumbprint": …, "notAfter": …}``. Authenticated by the bearer token (ARM authentication); the CSR proves the
    caller holds the private key the machine registered. Refusals are ``ArmError``s, rendered by DRF's exception
    handler (``arcportal.arm.errors.arm_exception_handler``); JSON out as on the ARM plane."""

    renderer_classes = [ArmJSONRenderer]

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
        vm = parse_vm_id(vm_id)
        machine = machine_by_vm_id(vm_id=vm) if vm else None
        if machine is None:
            raise ArmError(f"No machine has vmId {vm_id}.", code="ResourceNotFound", status=404)
        principal = request.user
        if not authz.can(principal, authz.ONBOARD, machine.arm_id):
            raise ArmError("The caller may not onboard this machine.", code="AuthorizationFailed", status=403)
        # The ARM PUT recorded str(principal): the user name, or the service principal's appId.
        if machine.onboarded_by and str(principal) != machine.onboarded_by:
            raise ArmError(
                "Only the principal that registered the machine may fetch its certificate.",
                code="AuthorizationFailed",
                status=403,
            )
        csr_pem = request.data.get("csr") if isinstance(request.data, dict) else None
        try:
            csr = x509.load_pem_x509_csr(str(csr_pem or "").encode())
        except ValueError as exc:
            raise ArmError("csr must be a PEM certificate request.", code="InvalidCsr", status=400) from exc
        if not csr.is_signature_valid:
            raise ArmError("The CSR is not signed by its own key.", code="InvalidCsr", status=400)
        spki = csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        issued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=base64.b64encode(spki).decode())
        return Response(
            {
                "certificate": issued.pem.decode(),
                "thumbprint": issued.thumbprint,
                "notAfter": issued.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "vmId": str(machine.vm_id),
            }
        )
