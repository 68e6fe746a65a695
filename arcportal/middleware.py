"""Project middleware: Vary on HX-Request, login required everywhere except the listed public planes, and the
input guard for every query string and form body."""

import re

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.cache import patch_vary_headers

from arcportal import textguard
from arcportal.arm.errors import arm_error_response, oauth_error_response

# Planes with their own authentication (DESIGN.md §5) or none by design. Everything else needs a session.
PUBLIC_PATHS = re.compile(
    r"^/(?:"
    r"accounts/login/|healthz$|static/|downloads/|his/|api/schema/|api/docs/|/?metadata/endpoints/?$"
    r"|/?(?i:subscriptions)(?:/|$)|(?i:providers)/"
    r"|[^/]+/(?:oauth2/v2\.0/|v2\.0/\.well-known/|discovery/v2\.0/keys)"
    r")"
)


class VaryOnHtmxMiddleware:
    """Every response varies on HX-Request, since one URL serves both the page and its fragment."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response


class LoginRequiredByDefaultMiddleware:
    """Deny by default: a new portal page cannot be forgotten open. Public planes are listed above."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not PUBLIC_PATHS.match(request.path_info) and not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                response = HttpResponse(status=401)
                response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?next={request.path}"
                return response
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)


# Where a refusal must be ARM JSON (ARM plane, agent plane) or an OAuth error (identity endpoints).
ARM_ERROR_PATHS = re.compile(r"^/(?:/?(?i:subscriptions)(?:/|$)|(?i:providers)/|his/|/?metadata/endpoints/?$)")
OAUTH_ERROR_PATHS = re.compile(r"^/[^/]+/(?:oauth2/v2\.0/|v2\.0/\.well-known/|discovery/v2\.0/keys)")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_PATH_LENGTH = 2048


class InputGuardMiddleware:
    """``arcportal.textguard`` at the edge, for what no serializer or form sees whole: the path, every query
    parameter and every form-encoded field of every request (raw ``request.GET``/``POST`` reads and fields no form
    declares included). Text with NUL, a lone surrogate or more than ``textguard.MAX_FORM_TEXT`` characters is
    refused with 400 in the shape of its plane: an ARM error body, OAuth's ``invalid_request``, or the portal's 400
    page; nothing behind it runs. Forms check again (``arcportal.forms.GuardedForm``: data that did not come from a
    request, e.g. a list query rebuilt from ``next``), JSON bodies are guarded by their parsers
    (``arcportal.arm.parsers``, the agent plane)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            textguard.check_text(request.path, target="the URL path", max_length=MAX_PATH_LENGTH)
            textguard.check_texts(request.GET.lists())
            if request.method == "POST" and request.content_type in FORM_TYPES:
                # Read the body first: a view may still read request.body after request.POST (the agent plane
                # hashes it), which Django allows only when the body was read into memory (bounded by
                # DATA_UPLOAD_MAX_MEMORY_SIZE; no view here takes file uploads).
                request.body  # noqa: B018
                textguard.check_texts(request.POST.lists(), long_fields=textguard.SCRIPT_FORM_FIELDS)
        except textguard.TextRefused as exc:
            return refused_response(request, exc)
        return self.get_response(request)


def refused_response(request, exc: textguard.TextRefused) -> HttpResponse:
    where = f" ({exc.target})" if exc.target else ""
    message = f"The request was refused{where}: {exc.message}"
    if ARM_ERROR_PATHS.match(request.path_info):
        code = "InvalidRequestUri" if exc.target == "the URL path" else "InvalidRequestContent"
        return arm_error_response(code, message, status=400)
    if OAUTH_ERROR_PATHS.match(request.path_info):
        return oauth_error_response("invalid_request", message, status=400)
    return render(request, "400.html", {"message": message}, status=400)
