"""Base class of every ARM operation view, and the per-path method dispatcher.

* ``ArmApiView``: bearer authentication (DRF's default class, named by ``settings.REST_FRAMEWORK``:
  ``identity.authentication.BearerTokenAuthentication``; 401, never 403, for bad tokens), ``?api-version=`` required,
  JSON in and ``application/json; charset=utf-8`` out whatever ``Accept`` says, ARM errors only, csrf-exempt (DRF
  views are, and no session authentication runs here), ``require(action, scope)`` through ``arcportal.authz.can``.
* ``arm_route({"GET": XGetApi, "PUT": XCreateOrUpdateApi, …})``: one URL, one view class per operation (named after
  its operationId); an unlisted method answers 405 with an ARM body. HEAD is answered by the ``HEAD`` entry when
  there is one (resource groups' ``check_existence``: 204/404), otherwise by the GET view without a body.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.urls import URLPattern
from django.urls.resolvers import LocaleRegexDescriptor, RegexPattern
from django.views.decorators.csrf import csrf_exempt
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from arcportal.activity import arm as activity_arm
from arcportal.arm.errors import ArmError, arm_error_response
from arcportal.arm.parsers import guarded_json
from arcportal.arm.versioning import request_api_version
from arcportal.authz import can


def rfc3339(value: dt.datetime | None) -> str | None:
    """``2026-01-02T03:04:05.123Z``: RFC 3339 with ``T``, milliseconds and an offset, always UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ArmJSONRenderer(JSONRenderer):
    charset = "utf-8"


class AlwaysJSON(BaseContentNegotiation):
    """ARM answers JSON whatever ``Accept`` says (the SDK sends ``*/*`` on polls, HEAD and DELETE)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class ArmApiView(APIView):
    # authentication_classes: DRF's default from settings (the composition root), so the core imports no app.
    permission_classes = [IsAuthenticated]
    renderer_classes = [ArmJSONRenderer]
    content_negotiation_class = AlwaysJSON
    #: ARM operationId (``Machines_Get``); used for the OpenAPI schema and in 403 messages.
    operation_id = ""
    #: The RBAC action this operation needs, shown in 403 messages (``Microsoft.HybridCompute/machines/read``).
    rbac_action = ""

    def dispatch(self, request, *args, **kwargs):
        # Every write is one transaction and one activity event (arcportal/activity/arm.py).
        if activity_arm.records(self, request.method):
            return activity_arm.recorded_dispatch(
                self, request, lambda: super(ArmApiView, self).dispatch(request, *args, **kwargs)
            )
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permission first: 401 before 400
        self.api_version = request_api_version(request)
        for name, value in kwargs.items():
            if isinstance(value, str) and _has_control_characters(value):
                raise ArmError(
                    f"The path segment '{name}' contains control characters.",
                    code="InvalidRequestUri",
                    status=400,
                    target=name,
                )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code != 405 and "Allow" in response:
            del response["Allow"]  # DRF lists the one method of this operation's class, not the path's
        # ARM's tracing headers: a request id of ours, and the client's ids echoed back.
        response["x-ms-request-id"] = str(uuid.uuid4())
        for header in ("x-ms-client-request-id", "x-ms-correlation-request-id"):
            value = request.headers.get(header)
            if value and len(value) <= 200 and not _has_control_characters(value):
                response[header] = value
        return response

    # --- helpers for subclasses ------------------------------------------------------------------------------

    def require(self, action: str, scope: str) -> None:
        """403 ``AuthorizationFailed`` unless the caller may ``action`` on ``scope``."""
        principal = self.request.user
        if not can(principal, action, scope):
            raise ArmError(
                f"The client '{principal}' with object id '{getattr(principal, 'object_id', '')}' does not have "
                f"authorization to perform action '{self.rbac_action or action}' over scope '{scope}' or the scope "
                "is invalid.",
                code="AuthorizationFailed",
                status=403,
            )

    def json_body(self, *, required: bool = True) -> dict[str, Any]:
        """The request body as a JSON object. Empty, non-JSON or non-object bodies are 400 InvalidRequestContent.

        Parsed from the raw body whatever the Content-Type says, so a client that forgets the header still works.
        """
        try:
            raw = self.request._request.body
        except RequestDataTooBig as exc:
            raise ArmError("The request content is too large.", code="RequestContentTooLarge", status=413) from exc
        if not raw or not raw.strip():
            if not required:
                return {}
            raise ArmError(
                "The request content was invalid and could not be deserialized: the body is empty.",
                code="InvalidRequestContent",
                status=400,
            )
        # The one text guard (arcportal.textguard): size, nesting, NUL, lone surrogates, huge numbers.
        data = guarded_json(raw)
        if not isinstance(data, Mapping):
            raise ArmError(
                "The request content was invalid and could not be deserialized: a JSON object is expected.",
                code="InvalidRequestContent",
                status=400,
            )
        return dict(data)

    @property
    def actor(self) -> tuple[str, str]:
        """``(name, type)`` recorded as ARM ``systemData`` for writes."""
        principal = self.request.user
        return str(principal), getattr(principal, "actor_type", "User")


def _has_control_characters(value: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def arm_route(views: Mapping[str, type[APIView]], *, path: str):
    """One view function for one ARM path, dispatching on the method to one APIView class per operation.

    ``path`` is the OpenAPI path template (``/subscriptions/{subscriptionId}/…``) used by the schema generator.
    """
    by_method = {method.upper(): cls.as_view() for method, cls in views.items()}
    allowed = ", ".join(sorted(by_method))

    @csrf_exempt
    def dispatch(request, *args, **kwargs):
        view = by_method.get(request.method)
        if view is None and request.method == "HEAD":
            view = by_method.get("GET")
        if view is None:
            return arm_error_response(
                "MethodNotAllowed",
                f"The HTTP method '{request.method}' is not supported for this resource; use {allowed}.",
                status=405,
                headers={"Allow": allowed},
            )
        return view(request, *args, **kwargs)

    dispatch.arm_views = dict(views)
    dispatch.arm_path = path
    return dispatch


class _IgnoreCaseRegexDescriptor(LocaleRegexDescriptor):
    def _compile(self, regex):
        return re.compile(regex, re.IGNORECASE)


class CaseInsensitiveRegexPattern(RegexPattern):
    """A ``re_path`` pattern compiled with ``re.IGNORECASE``.

    An inline ``(?i)`` would match too, but Django's ``reverse()`` refuses any pattern containing it and builds its
    reverse map from *every* pattern, so one ``(?i)`` route would break every ``{% url %}`` of the portal.
    """

    regex = _IgnoreCaseRegexDescriptor()


def arm_path(regex: str, view, *, name: str) -> URLPattern:
    """``re_path`` matching ``regex`` case-insensitively (API-CONTRACT.md §8.4)."""
    return URLPattern(CaseInsensitiveRegexPattern(regex, name=name, is_endpoint=True), view, {}, name)


def public_base_url(request) -> str:
    """``https://host[:port]`` the client used (proxy headers only when trusted), or ``ARC_PUBLIC_BASE_URL`` for
    plain-http requests, since every identity and ARM URL we hand out must be https (API-CONTRACT.md §1)."""
    if request.is_secure():
        return f"https://{request.get_host()}"
    return settings.ARC_PUBLIC_BASE_URL.rstrip("/")
