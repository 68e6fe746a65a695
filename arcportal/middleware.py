"""Project middleware: Vary on HX-Request, and login required everywhere except the listed public planes."""

import re

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.utils.cache import patch_vary_headers

# Planes with their own authentication (DESIGN.md §5) or none by design. Everything else needs a session.
PUBLIC_PATHS = re.compile(
    r"^/(?:"
    r"accounts/login/|healthz$|static/|downloads/|his/|api/schema/|api/docs/"
    r"|(?i:subscriptions)(?:/|$)|(?i:providers)/"
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
