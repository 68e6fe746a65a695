"""``/devicelogin``: a signed-in user enters the code a machine printed, sees what asks, approves or denies.

The code looked up is remembered in the session, so only the person who typed it can decide it. Wrong codes are
rate-limited per user and per IP (``identity.device_codes``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from arcportal.exceptions import ApplicationError
from identity.device_codes import (
    RateLimiterUnavailable,
    TooManyAttempts,
    device_code_approve,
    device_code_deny,
    device_code_get_pending,
    device_code_lookup,
)

SESSION_KEY = "devicelogin_code_id"


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@require_http_methods(["GET", "POST"])
def device_login(request: HttpRequest) -> HttpResponse:
    """Step 1: enter the code."""
    error = ""
    status = 200
    code = request.GET.get("code", "")[:20]  # verification_uri_complete prefills the code (RFC 8628 §3.3.1)
    if request.method == "POST":
        code = request.POST.get("code", "")
        try:
            record = device_code_lookup(typed_code=code, user_id=request.user.pk, ip=_ip(request))
        except (TooManyAttempts, RateLimiterUnavailable) as exc:
            error, status = exc.message, exc.status
        except ApplicationError as exc:
            error, status = exc.message, 400
        else:
            request.session[SESSION_KEY] = record.pk
            return redirect("identity:device-login-confirm")
    return render(request, "identity/device_login.html", {"error": error, "code": code}, status=status)


@require_http_methods(["GET", "POST"])
def device_login_confirm(request: HttpRequest) -> HttpResponse:
    """Step 2: what is asking (machine, resource group, subscription, IP, time) → Approve or Deny."""
    record = device_code_get_pending(device_code_id=request.session.get(SESSION_KEY))
    if record is None:
        request.session.pop(SESSION_KEY, None)
        return redirect("identity:device-login")
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision not in ("approve", "deny"):
            return render(request, "identity/device_login_confirm.html", {"record": record}, status=400)
        decide = device_code_approve if decision == "approve" else device_code_deny
        try:
            record = decide(device_code_id=record.pk, user=request.user)
        except ApplicationError as exc:
            request.session.pop(SESSION_KEY, None)
            return render(request, "identity/device_login.html", {"error": exc.message, "code": ""}, status=400)
        request.session.pop(SESSION_KEY, None)
        return render(request, "identity/device_login_done.html", {"record": record, "approved": decision == "approve"})
    return render(request, "identity/device_login_confirm.html", {"record": record})
