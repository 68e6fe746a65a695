"""Bearer-token authentication for the ARM plane: a JWT from our identity endpoints → an ``arcportal.authz.Principal``.

``settings.REST_FRAMEWORK`` names ``BearerTokenAuthentication`` as DRF's default, so every ARM view (and the agent
plane's certificate endpoint) authenticates with it without the core package importing identity.

Missing, unknown, expired or foreign tokens answer **401** with an ARM body and
``WWW-Authenticate: Bearer authorization_uri="https://host/{tenant}", error="invalid_token"`` (never
``insufficient_claims``; API-CONTRACT.md §3). ``authenticate_header`` is what makes DRF answer 401 instead of 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import DisallowedHost
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from arcportal.arm.errors import ArmAuthenticationFailed
from arcportal.authz import APP, MACHINE, USER, Principal
from identity.machine_identities import MIRID_CLAIM
from identity.tokens import TokenInvalid, user_object_id, verify_access_token


def _tenant_id() -> str | None:
    # Imported here: DRF imports this module (settings.REST_FRAMEWORK) while it defines APIView, which can be before
    # the app registry is ready; models and the services that use them are only imported once a request runs.
    from identity.selectors import tenant_get

    tenant = tenant_get()
    return str(tenant.tenant_id) if tenant else None


def _machine_principal(claims: dict[str, Any]) -> Principal:
    """A machine's system-assigned identity: allowed only while its machine may sign in (not deleted, not Expired,
    same certificate). It holds only what role assignments to its object id (the principal id) grant it."""
    from django.utils import timezone

    from identity.machine_identities import machine_credential_for_claims
    from identity.role_assignments import role_grants_for

    credential = machine_credential_for_claims(claims=claims, now=timezone.now())
    if credential is None:
        raise ArmAuthenticationFailed(
            "The managed identity of this token can no longer be used: its machine was deleted, is Expired, or has "
            "a new certificate."
        )
    return Principal(
        kind=MACHINE,
        object_id=credential.principal_id,
        name=credential.principal_id,
        client_id=credential.principal_id,
        claims=claims,
        grants=role_grants_for(principal_id=credential.principal_id),
    )


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    from identity.role_assignments import role_grants_for
    from identity.selectors import service_principal_by_app_id
    from identity.service_principals import service_principal_is_usable

    if claims.get("idtyp") == APP and MIRID_CLAIM in claims:
        return _machine_principal(claims)
    if claims.get("idtyp") == APP:
        principal = service_principal_by_app_id(app_id=claims.get("appid"))
        if principal is None or str(principal.object_id) != str(claims.get("oid")):
            raise ArmAuthenticationFailed("The service principal of this token no longer exists.")
        if not service_principal_is_usable(service_principal=principal):
            raise ArmAuthenticationFailed("The service principal of this token has been revoked or has expired.")
        return Principal(
            kind=APP,
            object_id=str(principal.object_id),
            name=str(principal.client_id),
            client_id=str(principal.client_id),
            claims=claims,
            service_principal=principal,
            grants=role_grants_for(principal_id=str(principal.object_id)),
        )
    if claims.get("idtyp") == USER:
        user = get_user_model()._default_manager.filter(username=claims.get("upn")).first()
        if user is None or not user.is_active or user_object_id(user) != claims.get("oid"):
            raise ArmAuthenticationFailed("The user of this token no longer exists or is inactive.")
        return Principal(
            kind=USER,
            object_id=claims["oid"],
            name=user.get_username(),
            client_id=str(claims.get("appid", "")),
            claims=claims,
            user=user,
            grants=role_grants_for(principal_id=claims["oid"]),
        )
    raise ArmAuthenticationFailed("The access token has an unknown identity type.")


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise ArmAuthenticationFailed("The 'Authorization' header must be 'Bearer <token>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise ArmAuthenticationFailed("The access token is invalid.") from exc
        tenant_id = _tenant_id()
        if tenant_id is None:
            raise ArmAuthenticationFailed("The portal has no tenant yet; run the bootstrap.")
        try:
            claims = verify_access_token(token, tenant_id=tenant_id)
        except TokenInvalid as exc:
            raise ArmAuthenticationFailed(exc.message, code=exc.code) from exc
        return principal_from_claims(claims), claims

    def authenticate_header(self, request) -> str:
        tenant_id = _tenant_id() or "common"
        try:
            base = request.build_absolute_uri("/").rstrip("/")
        except DisallowedHost:  # still answer 401, with a relative URI
            base = ""
        return f'Bearer authorization_uri="{base}/{tenant_id}", error="invalid_token"'
