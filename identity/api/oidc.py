"""Identity endpoints on the Microsoft identity platform's paths, so MSAL and azure-identity can use the portal as
their authority (API-CONTRACT.md §2, DESIGN.md §5):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration``: absolute https endpoint URLs built from the request host.
* ``GET /{tenant}/discovery/v2.0/keys``: the token-signing key as a JWKS (with ``kid``).
* ``POST /{tenant}/oauth2/v2.0/token``: form-encoded; dispatches on ``grant_type`` through
  ``identity.tokens.GRANT_HANDLERS``. Errors are OAuth JSON (``{"error", "error_description"}``), never ARM bodies.

Plain Django views: no session, no CSRF (OAuth clients post here), JSON out.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from arcportal.arm.errors import oauth_error_response
from arcportal.arm.views import public_base_url
from identity import tokens
from identity.models import Tenant
from identity.selectors import tenant_get_by_id

logger = logging.getLogger(__name__)


def _tenant(value: str) -> Tenant | None:
    """The tenant named in the path: our tenant id (case-insensitive). ``organizations``/``common`` are not ours.
    A malformed GUID is no such tenant; a database that does not answer is an error, not "not found"."""
    return tenant_get_by_id(tenant_id=value)


def _oauth_error(error: str, description: str, status: int = 400, headers=None) -> JsonResponse:
    return oauth_error_response(error, description, status=status, headers=headers)


def issuer_url(request: HttpRequest, tenant_id: str) -> str:
    return f"{public_base_url(request)}/{tenant_id}/v2.0"


@require_GET
def openid_configuration(request: HttpRequest, tenant: str) -> JsonResponse:
    found = _tenant(tenant)
    if found is None:
        return _oauth_error("invalid_tenant", f"Tenant '{tenant}' not found.")
    base = f"{public_base_url(request)}/{found.tenant_id}"
    return JsonResponse(
        {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
            "grant_types_supported": sorted(tokens.GRANT_HANDLERS),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [tokens.ALGORITHM],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["iss", "aud", "tid", "oid", "sub", "appid", "iat", "nbf", "exp"],
            "tenant_region_scope": None,
            "cloud_instance_name": "arcportal",
            "cloud_graph_host_name": "",
            "msgraph_host": "",
        }
    )


@require_GET
def jwks(request: HttpRequest, tenant: str) -> JsonResponse:
    if _tenant(tenant) is None:
        return _oauth_error("invalid_tenant", f"Tenant '{tenant}' not found.")
    return JsonResponse(tokens.jwks())


@csrf_exempt
@never_cache
@sensitive_post_parameters("client_secret", "client_assertion", "device_code", "code", "refresh_token")
@require_http_methods(["POST"])
def token(request: HttpRequest, tenant: str) -> JsonResponse:
    """OAuth 2.0 token endpoint. Unknown form fields and headers (``client_info``, ``x-client-*``) are ignored."""
    found = _tenant(tenant)
    if found is None:
        return _oauth_error("invalid_request", f"Tenant '{tenant}' not found. Check the tenant id of your authority.")
    grant_type = request.POST.get("grant_type", "")
    if not grant_type:
        return _oauth_error("invalid_request", "The request body must contain the 'grant_type' parameter.")
    handler = tokens.GRANT_HANDLERS.get(grant_type)
    if handler is None:
        return _oauth_error("unsupported_grant_type", f"The grant type '{grant_type}' is not supported.")
    token_request = tokens.TokenRequest(
        tenant=found, data=request.POST, issuer=issuer_url(request, str(found.tenant_id)), request=request
    )
    try:
        body = handler(token_request)
    except tokens.OAuthError as exc:
        logger.info("token request refused (%s): %s", grant_type, exc.error)
        return _oauth_error(exc.error, exc.description, exc.status, exc.headers)
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
