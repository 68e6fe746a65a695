"""``POST /{tenant}/oauth2/v2.0/devicecode`` (RFC 8628 §3.1–3.2) and the device-code grant of the token endpoint.

Form-encoded in, JSON out, no session and no CSRF (OAuth clients such as MSAL post here). The request may carry
optional context the agent knows (``machine_name``, ``resource_group``, ``subscription_id``); ``/devicelogin`` shows
it, with the requesting IP, before anyone approves.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from arcportal import ratelimits
from arcportal.arm.errors import oauth_error_response
from identity import codes
from identity.device_codes import DeviceCodeError, device_code_exchange, device_code_issue
from identity.selectors import tenant_is_known
from identity.tokens import OAuthError, TokenRequest, grant_handler, issue_user_token

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def verification_uri() -> str:
    return f"{settings.ARC_PUBLIC_BASE_URL.rstrip('/')}/devicelogin"


def oauth_error(error: str, description: str, status: int = 400, headers=None) -> JsonResponse:
    return oauth_error_response(error, description, status=status, headers=headers)


@csrf_exempt
@require_POST
def device_code_authorize(request: HttpRequest, tenant: str) -> JsonResponse:
    if not tenant_is_known(tenant):
        return oauth_error("invalid_tenant", f"Tenant '{tenant}' not found.")
    data = request.POST
    client_id = data.get("client_id", "")
    if not client_id:
        return oauth_error("invalid_request", "client_id is required.")
    try:
        ratelimits.limits_hit(request, ratelimits.devicecode_buckets(request))  # every request stores a row
    except (ratelimits.RateLimited, ratelimits.LimiterUnavailable) as exc:
        refused = OAuthError.from_limit(exc, too_many="device code requests from this address")
        return oauth_error(refused.error, refused.description, refused.status, refused.headers)
    issued = device_code_issue(
        client_id=client_id,
        scope=data.get("scope", ""),
        requesting_ip=client_ip(request),
        machine_name=data.get("machine_name", ""),
        resource_group=data.get("resource_group", ""),
        subscription_id=data.get("subscription_id", ""),
    )
    record = issued.record
    uri = verification_uri()
    return JsonResponse(
        {
            "device_code": issued.device_code,
            "user_code": record.user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?code={record.user_code}",
            "expires_in": codes.expires_in_seconds(now=record.created_at, expires=record.expires_at),
            "interval": record.interval_seconds,
            "message": codes.sign_in_message(verification_uri=uri, user_code=record.user_code),
        }
    )


@grant_handler(DEVICE_CODE_GRANT)
def device_code_grant(request: TokenRequest) -> dict:
    """RFC 8628 §3.4: the device polls with its device code; once a user approved it on ``/devicelogin`` the answer
    is a user token for that user (single use). Until then ``authorization_pending`` / ``slow_down``; then
    ``access_denied``, ``expired_token`` or ``invalid_grant``."""
    device_code = request.data.get("device_code", "")
    if not device_code:
        raise OAuthError("invalid_request", "The request body must contain the 'device_code' parameter.")
    try:
        record = device_code_exchange(device_code=device_code, client_id=request.data.get("client_id", ""))
    except DeviceCodeError as exc:
        raise OAuthError(exc.error, exc.description) from exc
    user = record.decided_by
    if user is None or not user.is_active:
        raise OAuthError("access_denied", "The user who approved this sign-in no longer exists or is inactive.")
    issued = issue_user_token(
        user=user, tenant_id=str(request.tenant.tenant_id), issuer=request.issuer, now=request.now
    )
    return issued.response_body()
