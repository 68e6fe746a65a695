"""Access tokens of the identity plane: RS256 JWTs signed with the portal's token-signing key.

* ``issue_app_token`` / ``issue_user_token`` mint a token for a service principal or a portal user.
* ``verify_access_token`` checks signature, audience, time claims and tenant; ``identity.authentication``
  turns the claims into a principal.
* ``GRANT_HANDLERS`` maps an OAuth ``grant_type`` to a handler ``(TokenRequest) -> dict`` (the 200 JSON body)
  that raises ``OAuthError`` on failure. The token view (``identity/api/oidc.py``) only dispatches through
  this dict, so another grant plugs in with ``GRANT_HANDLERS["urn:ietf:params:oauth:grant-type:device_code"] = f``
  (or the ``grant_handler`` decorator) from the module that implements it.

The claims follow Microsoft identity platform v2 access tokens: ``iss``, ``aud``, ``tid``, ``oid``, ``sub``,
``appid`` (``azp``), ``idtyp`` (``app`` or ``user``), ``iat``, ``nbf``, ``exp``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt
from django.utils import timezone

from arcportal import ratelimits
from identity import pki

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
AUDIENCE = "https://management.azure.com/"
# Audiences we accept: Azure's management resource under both its names (the SDKs ask for the first).
ACCEPTED_AUDIENCES = (
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
)
LIFETIME = dt.timedelta(hours=1)
EXPIRES_IN = 3599  # seconds, as Entra ID answers; azure-core needs > 300
LEEWAY_SECONDS = 30
# The well-known id of the Azure CLI public client, reported as ``appid`` in user tokens.
USER_TOKEN_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # noqa: S105 - a public client id
USER_OID_NAMESPACE = uuid.UUID("7d4f6c2e-3f0a-4f5e-9d6b-0a6c6a1e2b3c")

CLIENT_CREDENTIALS = "client_credentials"


class TokenInvalid(Exception):
    """The token can't be used. ``code`` is the ARM error code to answer with."""

    def __init__(self, message: str, *, code: str = "InvalidAuthenticationToken") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class OAuthError(Exception):
    """An OAuth 2.0 error: ``error`` and ``description`` with ``status`` (and ``headers``, such as ``Retry-After``),
    answered by ``arcportal.arm.errors.oauth_error_response``."""

    def __init__(self, error: str, description: str, *, status: int = 400, headers=None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    @classmethod
    def from_limit(cls, exc: Exception, *, too_many: str = "failed sign-in attempts") -> OAuthError:
        """429 (too many failed attempts) or 503 (the limiter's cache does not answer), ``temporarily_unavailable``
        with ``Retry-After`` (RFC 6749 §4.1.2.1's code for "try again later")."""
        if isinstance(exc, ratelimits.RateLimited):
            description = f"Too many {too_many}. Try again in {exc.retry_after} seconds."
        else:
            description = "Sign-in is unavailable for a moment: its attempt limiter does not answer. Try again later."
        return cls("temporarily_unavailable", description, status=exc.status, headers={"Retry-After": exc.retry_after})


@dataclass(frozen=True)
class TokenRequest:
    """What a grant handler gets: the tenant, the form fields, and the HTTP request (for client address etc.)."""

    tenant: Any
    data: Mapping[str, str]
    issuer: str
    request: Any = None
    now: dt.datetime = field(default_factory=timezone.now)


GrantHandler = Callable[[TokenRequest], dict[str, Any]]
GRANT_HANDLERS: dict[str, GrantHandler] = {}


def grant_handler(grant_type: str) -> Callable[[GrantHandler], GrantHandler]:
    """Register ``func`` as the handler of ``grant_type`` (decorator)."""

    def register(func: GrantHandler) -> GrantHandler:
        GRANT_HANDLERS[grant_type] = func
        return func

    return register


# --- Keys ----------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk() -> dict[str, str]:
    """The signing key as a JWK with ``kid`` = its RFC 7638 thumbprint (stable as long as the key is)."""
    numbers = pki.token_signing_key().public_key().public_numbers()
    e = _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
    n = _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
    thumbprint = _b64(
        hashlib.sha256(json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":")).encode()).digest()
    )
    return {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": thumbprint, "n": n, "e": e}


def jwks() -> dict[str, list[dict[str, str]]]:
    return {"keys": [public_jwk()]}


# --- Issue and verify ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    expires_at: dt.datetime

    def response_body(self) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": self.access_token,
        }


def _issue(claims: dict[str, Any], *, now: dt.datetime | None) -> IssuedToken:
    now = now or timezone.now()
    issued_at = int(now.timestamp())
    expires = issued_at + int(LIFETIME.total_seconds())
    payload = {"aud": AUDIENCE, "iat": issued_at, "nbf": issued_at, "exp": expires, "ver": "2.0", **claims}
    token = jwt.encode(payload, pki.token_signing_key(), algorithm=ALGORITHM, headers={"kid": public_jwk()["kid"]})
    return IssuedToken(token, EXPIRES_IN, dt.datetime.fromtimestamp(expires, tz=dt.UTC))


def user_object_id(user) -> str:
    """A stable GUID for a portal user (Entra's ``oid``)."""
    return str(uuid.uuid5(USER_OID_NAMESPACE, f"user:{user.pk}"))


def issue_app_token(*, service_principal, tenant_id: str, issuer: str, now: dt.datetime | None = None) -> IssuedToken:
    client_id = str(service_principal.client_id)
    return _issue(
        {
            "iss": issuer,
            "tid": str(tenant_id),
            "oid": str(service_principal.object_id),
            "sub": str(service_principal.object_id),
            "appid": client_id,
            "azp": client_id,
            "idtyp": "app",
            "app_displayname": service_principal.display_name,
        },
        now=now,
    )


def issue_user_token(*, user, tenant_id: str, issuer: str, now: dt.datetime | None = None) -> IssuedToken:
    oid = user_object_id(user)
    return _issue(
        {
            "iss": issuer,
            "tid": str(tenant_id),
            "oid": oid,
            "sub": oid,
            "appid": USER_TOKEN_APP_ID,
            "azp": USER_TOKEN_APP_ID,
            "idtyp": "user",
            "upn": user.get_username(),
            "unique_name": user.get_username(),
            "name": user.get_full_name() or user.get_username(),
        },
        now=now,
    )


def verify_access_token(token: str, *, tenant_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The claims of a valid token for our tenant, or ``TokenInvalid``."""
    if now is None:
        now = timezone.now()
    try:
        claims = jwt.decode(
            token,
            pki.token_signing_key().public_key(),
            algorithms=[ALGORITHM],
            audience=list(ACCEPTED_AUDIENCES),
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "tid", "oid", "idtyp"], "verify_exp": False, "verify_nbf": False},
        )
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("The access token is invalid.") from exc
    timestamp = now.timestamp()
    if claims["exp"] + LEEWAY_SECONDS < timestamp:
        raise TokenInvalid("The access token has expired.", code="ExpiredAuthenticationToken")
    if claims["nbf"] - LEEWAY_SECONDS > timestamp:
        raise TokenInvalid("The access token is not valid yet.")
    if str(claims["tid"]).lower() != str(tenant_id).lower():
        raise TokenInvalid("The access token is from a different tenant.", code="InvalidAuthenticationTokenTenant")
    return claims


# --- Grants --------------------------------------------------------------------------------------------------

MANAGEMENT_SCOPES = {audience.rstrip("/") for audience in ACCEPTED_AUDIENCES}


def _check_scope(scope: str) -> None:
    """client_credentials asks for ``{resource}/.default``; we serve one resource, Azure Resource Manager."""
    for item in scope.split():
        resource = item.removesuffix("/.default").rstrip("/")
        if item.endswith("/.default") and resource in MANAGEMENT_SCOPES:
            continue
        if item in ("openid", "profile", "offline_access"):
            continue
        raise OAuthError("invalid_scope", f"The scope '{item}' is not valid. Ask for '{AUDIENCE}.default'.")


def _client_credentials(request: TokenRequest) -> tuple[str, str]:
    """client_secret_post, or client_secret_basic (RFC 6749 §2.3.1)."""
    client_id = request.data.get("client_id", "")
    secret = request.data.get("client_secret", "")
    header = request.request.META.get("HTTP_AUTHORIZATION", "") if request.request is not None else ""
    if header[:6].lower() == "basic " and not secret:
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = client_id or unquote(basic_id), unquote(basic_secret)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "The Authorization header is malformed.", status=401) from exc
    return client_id, secret


@grant_handler(CLIENT_CREDENTIALS)
def client_credentials_grant(request: TokenRequest) -> dict[str, Any]:
    """RFC 6749 §4.4: a service principal's client id and secret → an app token."""
    from identity import service_principals  # models: imported once a request runs (see authentication.py)

    client_id, secret = _client_credentials(request)
    if not client_id:
        raise OAuthError("invalid_request", "The request body must contain the 'client_id' parameter.")
    if request.data.get("client_assertion") or request.data.get("client_assertion_type"):
        if secret:
            raise OAuthError("invalid_request", "Send either 'client_secret' or 'client_assertion', not both.")
        return _machine_assertion_grant(request, client_id)
    if not secret:
        raise OAuthError(
            "invalid_client", "The request body must contain 'client_secret' or 'client_assertion'.", status=401
        )
    _check_scope(request.data.get("scope", f"{AUDIENCE}.default"))
    # Failed attempts are limited per IP and per client id, checked before the secret's hash runs.
    buckets = ratelimits.signin_buckets(request.request, account=f"client:{client_id}") if request.request else []
    try:
        ratelimits.limits_check(request.request, buckets)
        try:
            principal = service_principals.service_principal_authenticate(
                client_id=client_id, secret=secret, now=request.now
            )
        except service_principals.InvalidCredentials as exc:
            ratelimits.limits_count(request.request, buckets)
            raise OAuthError("invalid_client", str(exc), status=401) from exc
    except (ratelimits.RateLimited, ratelimits.LimiterUnavailable) as exc:
        raise OAuthError.from_limit(exc) from exc
    issued = issue_app_token(
        service_principal=principal, tenant_id=str(request.tenant.tenant_id), issuer=request.issuer, now=request.now
    )
    return issued.response_body()


def issue_machine_token(*, credential, tenant_id: str, issuer: str, now: dt.datetime | None = None) -> IssuedToken:
    """An app token for a machine's system-assigned identity (``identity.machine_identities``)."""
    from identity.machine_identities import MIRID_CLAIM, THUMBPRINT_CLAIM

    principal_id = credential.principal_id
    return _issue(
        {
            "iss": issuer,
            "tid": str(tenant_id),
            "oid": principal_id,
            "sub": principal_id,
            "appid": principal_id,
            "azp": principal_id,
            "idtyp": "app",
            MIRID_CLAIM: credential.resource_id,
            THUMBPRINT_CLAIM: credential.thumbprint,
        },
        now=now,
    )


def _machine_assertion_grant(request: TokenRequest, client_id: str) -> dict[str, Any]:
    """client_credentials with a client assertion signed by a machine key → the machine identity's token."""
    from identity import machine_identities

    if request.data.get("client_assertion_type") != machine_identities.ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"'client_assertion_type' must be '{machine_identities.ASSERTION_TYPE}'.")
    if not request.data.get("client_assertion"):
        raise OAuthError("invalid_request", "The request body must contain the 'client_assertion' parameter.")
    _check_scope(request.data.get("scope", f"{AUDIENCE}.default"))
    # The audience is this endpoint's URL: the public base (as in the issuer) + the path the client posted to.
    base = request.issuer.removesuffix(f"/{request.tenant.tenant_id}/v2.0")
    path = request.request.path if request.request is not None else ""
    audiences = [f"{base}{path}", f"{base}/{request.tenant.tenant_id}/oauth2/v2.0/token"]
    buckets = ratelimits.signin_buckets(request.request, account=f"client:{client_id}") if request.request else []
    try:
        ratelimits.limits_check(request.request, buckets)
        try:
            credential = machine_identities.machine_assertion_verify(
                client_id=client_id, assertion=request.data["client_assertion"], audiences=audiences, now=request.now
            )
        except machine_identities.AssertionRefused as exc:
            ratelimits.limits_count(request.request, buckets)
            logger.info("client assertion of %s refused: %s", client_id[:64], exc)
            raise OAuthError("invalid_client", machine_identities.WRONG_ASSERTION, status=401) from exc
    except (ratelimits.RateLimited, ratelimits.LimiterUnavailable) as exc:
        raise OAuthError.from_limit(exc) from exc
    issued = issue_machine_token(
        credential=credential, tenant_id=str(request.tenant.tenant_id), issuer=request.issuer, now=request.now
    )
    return issued.response_body()
