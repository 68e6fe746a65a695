"""The goal-state channel of the agent plane (docs/extensions.md): what a machine's agent must do, and its reports.

* ``GET /his/machines/{vmId}/goalstate`` — ``{etag, nextPollSeconds, extensions[], runCommands[]}``; ``ETag``
  header; ``If-None-Match`` with the current etag → 304 and no body.
* ``POST …/extensions/{name}/status`` and ``POST …/runcommands/{name}/status`` — one report (the body
  ``azcmagent.protocol.extension_report`` / ``run_command_report`` builds); 200 ``{}``. 404 ``NotFound`` for a name
  the machine does not have, 409 ``StaleSequence`` for a report of another than the current sequence (or one already
  reported), 400 ``InvalidRequestContent`` for a body of the wrong shape, 413 ``BodyTooLarge`` over 64 KiB.

Every request carries a machine JWT bound to it (``htm``/``htu``, ``agentplane.auth.verify_request``), verified with
the key of the machine the path names and no other; its ``jti`` is claimed once. 410 for a vmId no machine has,
403 ``Expired`` as for heartbeats. Errors leave through ``arcportal.arm.errors``.
"""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from agentplane.auth import bearer_token, parse_vm_id, replay_window_seconds, verify_request
from agentplane.reports import extension_report_clean, run_command_report_clean
from agentplane.views import MAX_BODY_BYTES, _machine_deleted
from arcportal import textguard
from arcportal.arm.errors import ArmError, arm_error_response
from arcportal.exceptions import ApplicationError
from machines.goalstate import goal_state_build, goal_state_etag, request_nonce_claim
from machines.heartbeat_reads import machine_for_heartbeat
from machines.selectors import machine_by_vm_id
from machines.services.extensions import extension_report_record
from machines.services.runcommands import run_command_report_record

REPORT_LIMITS = textguard.Limits(max_bytes=MAX_BODY_BYTES, max_depth=4, max_string=16 * 1024)


def agent_plane_errors(view):
    """Every refusal (``ArmError`` of the plane, ``ApplicationError`` of a service: 404, 409) as an ARM error body."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as exc:
            return arm_error_response(
                exc.code, exc.message, status=exc.status, target=exc.target, headers=getattr(exc, "headers", None)
            )

    return wrapper


def _authenticated_machine(request: HttpRequest, vm_id: str):
    vm = parse_vm_id(vm_id)
    if vm is None:
        raise ArmError("The vmId in the path is not a GUID.", code="InvalidVmId", status=400)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise ArmError(f"The body is larger than {MAX_BODY_BYTES} bytes.", code="BodyTooLarge", status=413)
    token = bearer_token(request)
    if not token:
        raise ArmError("This endpoint needs 'Authorization: Bearer <machine JWT>'.", code="InvalidToken", status=401)
    machine = machine_for_heartbeat(vm_id=vm)  # the hot path's one prepared query; the full row only when needed
    if machine is None:
        raise _machine_deleted(vm)
    now = timezone.now()
    claims = verify_request(
        machine=machine, token=token, body=body, vm_id=vm, now=now, method=request.method, path=request.path
    )
    if not request_nonce_claim(nonce=f"{vm}:{claims['jti']}", at=now, ttl=replay_window_seconds(claims, now)):
        raise ArmError("This machine token was already used (jti seen before).", code="ReplayedToken", status=401)
    return machine, body


def _full(machine):
    """The machine's model row (the authentication read only what it checks); 410 if it went meanwhile."""
    full = machine_by_vm_id(vm_id=str(machine.vm_id))
    if full is None:
        raise _machine_deleted(str(machine.vm_id))
    return full


@csrf_exempt
@require_GET
@agent_plane_errors
def machine_goal_state(request: HttpRequest, vm_id: str) -> HttpResponse:
    machine, _ = _authenticated_machine(request, vm_id)
    etag = goal_state_etag(machine_id=machine.pk)
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(goal_state_build(machine=_full(machine), etag=etag))
    response["ETag"] = etag
    response["Cache-Control"] = "no-store"
    return response


def _report(request: HttpRequest, body: bytes, clean):
    try:
        data = textguard.json_loads(body, limits=REPORT_LIMITS)
    except textguard.TextRefused as exc:
        raise ArmError(f"The report was refused: {exc}", code="InvalidRequestContent", status=400) from exc
    try:
        return clean(data)
    except ValueError as exc:
        raise ArmError(f"The report was refused: {exc}", code="InvalidRequestContent", status=400) from exc


@csrf_exempt
@require_POST
@agent_plane_errors
def machine_extension_status(request: HttpRequest, vm_id: str, name: str) -> JsonResponse:
    machine, body = _authenticated_machine(request, vm_id)
    report = _report(request, body, extension_report_clean)
    extension_report_record(machine=_full(machine), name=name, report=report)
    return JsonResponse({})


@csrf_exempt
@require_POST
@agent_plane_errors
def machine_run_command_status(request: HttpRequest, vm_id: str, name: str) -> JsonResponse:
    machine, body = _authenticated_machine(request, vm_id)
    report = _report(request, body, run_command_report_clean)
    run_command_report_record(machine=_full(machine), name=name, report=report)
    return JsonResponse({})
