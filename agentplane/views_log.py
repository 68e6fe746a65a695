"""``PUT /his/log``: failure reports from onboarding scripts (ARC-REFERENCE.md §1.2, the portal's ``/log``), stored by
onboarding's services (``onboarding_failure_record``); errors leave through ``arcportal.arm.errors``.

Public and CSRF-exempt (a script has no session), so it is bounded: at most ``ARC_HIS_LOG_MAX_BYTES`` per report
(413 beyond), ``ARC_HIS_LOG_RATE_LIMIT`` reports per client IP per ``ARC_HIS_LOG_RATE_WINDOW_SECONDS`` (429 beyond,
counted by django-ratelimit in the Django cache, so shared by every web process when the cache is Redis), text
through ``arcportal.textguard``, and a fixed shape (400 with a JSON error otherwise). The client IP is
``REMOTE_ADDR``: behind a TLS proxy, the proxy must set it. Stored rows are capped by beat
(``onboarding_failure_purge_task``: ``ARC_ONBOARDING_LOG_RETENTION_DAYS``, ``ARC_ONBOARDING_LOG_MAX_ROWS``).

While the cache (Redis) is down the limit does not fail open: each web process counts in its own memory
(``_local``, bounded entries), the same limit per IP and at most ``FALLBACK_TOTAL_FACTOR`` times it from all
addresses together, so N processes accept at most N times the limit.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import get_usage
from redis import RedisError
from rest_framework import serializers

from arcportal import textguard
from arcportal.arm.errors import arm_error_response
from onboarding import services

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024
DEFAULT_RATE_LIMIT = 30
DEFAULT_RATE_WINDOW_SECONDS = 60
REPORT_LIMITS = textguard.Limits(max_bytes=1024 * 1024, max_depth=8, max_string=64 * 1024)


class OnboardingLogInput(serializers.Serializer):
    """The report body the scripts send (the keys of the real portal's telemetry)."""

    subscriptionId = serializers.CharField(required=False, allow_blank=True, max_length=64)
    resourceGroup = serializers.CharField(required=False, allow_blank=True, max_length=90)
    tenantId = serializers.CharField(required=False, allow_blank=True, max_length=64)
    location = serializers.CharField(required=False, allow_blank=True, max_length=40)
    correlationId = serializers.CharField(max_length=64)
    authType = serializers.CharField(required=False, allow_blank=True, max_length=20)
    operation = serializers.CharField(required=False, allow_blank=True, max_length=100)
    messageType = serializers.CharField(max_length=200)
    message = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        wrong = sorted(k for k, v in data.items() if k in self.fields and v is not None and not isinstance(v, str))
        if wrong:
            raise serializers.ValidationError({k: ["Must be a string."] for k in wrong})
        return super().to_internal_value({k: v for k, v in data.items() if v is not None})


def _error(status: int, code: str, message: str, details=None) -> JsonResponse:
    return arm_error_response(code, message, status=status, details=details)


FALLBACK_TOTAL_FACTOR = 10
_local = LocMemCache("his-log-rate-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


def _rate_limited(request: HttpRequest, ip: str) -> bool:
    limit = getattr(settings, "ARC_HIS_LOG_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    window = getattr(settings, "ARC_HIS_LOG_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS)
    try:
        usage = get_usage(request, group="his-log", key="ip", rate=(limit, window), increment=True)
    except (RedisError, OSError) as exc:
        logger.warning("failure-report rate limit: cache unavailable (%s), counting in this process", exc)
        return _locally_limited(ip, limit=limit, window=window)
    return bool(usage and usage["should_limit"])


def _locally_limited(ip: str, *, limit: int, window: int) -> bool:
    """The bounded fallback: this process's own fixed-window counters, per IP and for all addresses."""
    for key, cap in ((f"ip:{ip}", limit), ("all", limit * FALLBACK_TOTAL_FACTOR)):
        _local.add(key, 0, timeout=window)
        try:
            count = _local.incr(key)
        except ValueError:  # expired between add and incr
            _local.set(key, 1, timeout=window)
            count = 1
        if count > cap:
            return True
    return False


@csrf_exempt
@require_http_methods(["PUT", "POST"])
def onboarding_log_put(request: HttpRequest) -> JsonResponse:
    ip = request.META.get("REMOTE_ADDR") or None
    if _rate_limited(request, ip or "unknown"):
        response = _error(429, "TooManyRequests", "Too many failure reports from this address; try again later.")
        response["Retry-After"] = str(getattr(settings, "ARC_HIS_LOG_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS))
        return response
    max_bytes = getattr(settings, "ARC_HIS_LOG_MAX_BYTES", DEFAULT_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "InvalidRequestContent", "Content-Length is not a number.")
    if declared > max_bytes:
        return _error(413, "RequestEntityTooLarge", f"A failure report can be at most {max_bytes} bytes.")
    raw = request.read(max_bytes + 1)
    if len(raw) > max_bytes:
        return _error(413, "RequestEntityTooLarge", f"A failure report can be at most {max_bytes} bytes.")
    try:
        # Messages are tool output: keep them even if a byte sequence is not valid UTF-8 (U+FFFD), but refuse what
        # the text guard refuses (NUL, lone surrogates, deep nesting).
        data = textguard.json_loads(raw.decode("utf-8", errors="replace"), limits=REPORT_LIMITS)
    except textguard.TextRefused as exc:
        if exc.message.startswith("not valid JSON"):
            return _error(400, "InvalidRequestContent", "The body must be a JSON object.")
        return _error(400, "InvalidRequestContent", f"The failure report was refused: {exc}")
    serializer = OnboardingLogInput(data=data)
    if not serializer.is_valid():
        return _error(400, "InvalidRequestContent", "The failure report is not valid.", serializer.errors)
    failure = services.onboarding_failure_record(report=serializer.validated_data, source_ip=ip)
    return JsonResponse({"id": failure.pk, "correlationId": failure.correlation_id}, status=201)
