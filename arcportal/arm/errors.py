"""The only way errors leave the ARM plane, the agent plane and the identity endpoints.

* ARM (and agent plane): ``{"error": {"code", "message", "target"?, "details"?}}``. ``arm_exception_handler`` is
  DRF's ``EXCEPTION_HANDLER``; it never returns DRF's ``{"detail": …}`` shape and never HTML (API-CONTRACT.md §3
  "Error body", §8.5–8.6). ``arm_error_response`` builds the same body as a plain Django response, for code paths
  outside DRF (the method dispatcher's 405, the agent plane, Django's own error handlers, the input guard).
* OAuth 2.0 (identity endpoints): ``{"error", "error_description"}`` with ``Cache-Control: no-store``
  (RFC 6749 §5.2), built by ``oauth_error_response`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from arcportal.exceptions import ApplicationError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json; charset=utf-8"


class ArmError(ApplicationError):
    """An ARM error raised by the plumbing itself (api-version, authentication, authorization, routing)."""

    def __init__(self, message: str, *, code: str, status: int, target: str | None = None, headers=None) -> None:
        super().__init__(message, code=code, target=target)
        self.status = status
        self.headers = dict(headers or {})


class ArmAuthenticationFailed(exceptions.AuthenticationFailed):
    """401 with an ARM code (``InvalidAuthenticationToken``, ``ExpiredAuthenticationToken``, …)."""

    def __init__(self, message: str, *, code: str = "InvalidAuthenticationToken") -> None:
        super().__init__(message)
        self.arm_code = code


def error_body(
    code: str,
    message: str,
    *,
    target: str | None = None,
    details: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``details`` is ARM's list of error objects, or (the agent plane's failure log) a field → messages mapping."""
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    if details:
        error["details"] = dict(details) if isinstance(details, Mapping) else list(details)
    return {"error": error}


def arm_error_response(
    code: str, message: str, *, status: int, target: str | None = None, details=None, headers=None
) -> JsonResponse:
    """The same body as the exception handler, as a plain Django response (usable outside DRF views)."""
    response = JsonResponse(error_body(code, message, target=target, details=details), status=status)
    response["Content-Type"] = CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = str(value)
    return response


def oauth_error_response(error: str, description: str, *, status: int = 400, headers=None) -> JsonResponse:
    """An OAuth 2.0 error (RFC 6749 §5.2): ``{"error": error, "error_description": description}``, never cached."""
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = str(value)
    return response


def _flatten(detail: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """DRF validation detail → ``[(target, code, message)]`` with dotted targets (``properties.vmId``)."""
    items: list[tuple[str, str, str]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            items.extend(_flatten(value, name))
    elif isinstance(detail, list | tuple):
        for value in detail:
            items.extend(_flatten(value, prefix))
    else:
        code = getattr(detail, "code", "invalid") or "invalid"
        items.append((prefix, str(code), str(detail)))
    return items


def _is_arm_code(code: str) -> bool:
    """Our serializers raise ARM codes (``LocationRequired``, ``InvalidTagNameCharacters``); DRF's are
    lower-case (``required``, ``invalid``)."""
    return bool(code) and code[0].isupper()


def validation_error_body(detail: Any) -> dict[str, Any]:
    items = _flatten(detail)
    if not items:
        return error_body("InvalidRequestContent", "The request content was invalid.")
    specific = [item for item in items if _is_arm_code(item[1])]
    target, code, message = specific[0] if specific else items[0]
    top_code = code if specific else "InvalidRequestContent"
    text = f"{target}: {message}" if target and not specific else message
    details = [
        {"code": c if _is_arm_code(c) else "InvalidRequestContent", "message": m, **({"target": t} if t else {})}
        for t, c, m in items
    ]
    return error_body(top_code, text, target=target or None, details=details if len(details) > 1 else None)


def arm_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF exception handler: every exception becomes an ARM error body with the right status."""
    headers: dict[str, str] = {}
    if isinstance(exc, ArmError):
        status, body = exc.status, error_body(exc.code, exc.message, target=exc.target)
        headers.update(exc.headers)
    elif isinstance(exc, ApplicationError):
        status, body = exc.status, error_body(exc.code, exc.message, target=exc.target)
    elif isinstance(exc, exceptions.ValidationError):
        status, body = 400, validation_error_body(exc.detail)
    elif isinstance(exc, exceptions.ParseError):
        status = 400
        body = error_body(
            "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {exc.detail}"
        )
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        status = 415
        body = error_body("UnsupportedMediaType", f"The content media type '{exc.args[0]}' is not supported.")
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        if isinstance(exc, ArmAuthenticationFailed):
            code, message = exc.arm_code, str(exc.detail)
        elif isinstance(exc, exceptions.NotAuthenticated):
            code, message = "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        else:
            code, message = "InvalidAuthenticationToken", str(exc.detail)
        # DRF answers 403 when no authenticator offers a header; ARM always wants 401 here (§3 Authentication).
        status, body = 401, error_body(code, message)
    elif isinstance(exc, exceptions.PermissionDenied | PermissionDenied):
        status = 403
        body = error_body("AuthorizationFailed", "The client does not have authorization to perform this action.")
    elif isinstance(exc, exceptions.NotFound | Http404):
        status, body = 404, error_body("ResourceNotFound", "The requested resource was not found.")
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status = 405
        body = error_body("MethodNotAllowed", f"The HTTP method '{exc.args[0]}' is not supported for this resource.")
    elif isinstance(exc, exceptions.Throttled):
        status = 429
        body = error_body("TooManyRequests", str(exc.detail))
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait) or 1)
    elif isinstance(exc, exceptions.APIException):
        status = exc.status_code
        body = error_body(str(exc.default_code).title().replace("_", ""), str(exc.detail))
    else:
        # Unexpected: let Django log it and answer through handler500 (ARM JSON under /subscriptions).
        return None  # type: ignore[return-value]
    response = Response(body, status=status, headers=headers or None)
    return response
