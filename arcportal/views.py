"""Project-level views: health and error pages (ARM JSON under the ARM plane, through ``arcportal.arm.errors``;
HTML elsewhere)."""

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render

from arcportal.arm.errors import arm_error_response
from arcportal.tasks import BEAT_LIVENESS_KEY

ARM_PREFIXES = ("/subscriptions", "/providers")


def _wants_arm(request: HttpRequest) -> bool:
    return request.path_info.lower().startswith(ARM_PREFIXES)


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # pragma: no cover - reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        checks["beat_last_seen"] = cache.get(BEAT_LIVENESS_KEY)
        checks["cache"] = "ok"
    except Exception as exc:  # Redis down: the portal still works (direct heartbeat writes), so it is reported only
        checks["beat_last_seen"] = None
        checks["cache"] = f"error: {exc.__class__.__name__}"
    healthy = checks["database"] == "ok"
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


def bad_request(request: HttpRequest, exception=None):
    """Django's 400 (e.g. a Host header not in ALLOWED_HOSTS): ARM JSON under the ARM plane, plain HTML elsewhere."""
    if _wants_arm(request):
        return arm_error_response("BadRequest", "The request was rejected (check the Host header and URL).", status=400)
    return render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception=None):
    if _wants_arm(request):
        return arm_error_response("AuthorizationFailed", "You do not have permission for this request.", status=403)
    return render(request, "403.html", status=403)


def not_found(request: HttpRequest, exception=None):
    if _wants_arm(request):
        return arm_error_response("NotFound", f"No route matches '{request.path}'.", status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest):
    if _wants_arm(request):
        return arm_error_response("InternalServerError", "The server hit an unexpected error.", status=500)
    return render(request, "500.html", status=500)
