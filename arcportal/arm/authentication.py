"""Bearer-token authentication for the ARM plane: a JWT from our identity endpoints → a ``Principal``.

Missing, unknown, expired or foreign tokens answer **401** with an ARM body and
``WWW-Authenticate: Bearer authorization_uri="https://host/{tenant}", error="invalid_token"`` (never
``insufficient_claims``; API-CONTRACT.md §3). ``authenticate_header`` is what makes DRF answer 401 instead of 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from arcportal.arm.errors import ArmAuthenticationFailed

APP = "app"
USER = "user"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service principal (``kind="app"``) or a portal user (``kind="user"``).

    ``role``/``scope`` are what ``arcportal.authz.can`` reads; portal users are Owner of ``/``.
    """

    kind: str
    object_id: str
    name: str
    role: str
    scope: str
    client_id: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    user: Any = field(default=None, compare=False, repr=False)
    service_principal: Any = field(default=None, compare=False, repr=False)

    is_authenticated = True
    is_anonymous = False

    @property
    def actor_type(self) -> str:
        """ARM ``systemData.createdByType``."""
        return "Application" if self.kind == APP else "User"

    @property
    def pk(self) -> str:
        return self.object_id

    def __str__(self) -> str:
        return self.name


def _tenant_id() -> str | None:
    from machines.selectors import tenant_get

    tenant = tenant_get()
    return str(tenant.tenant_id) if tenant else None


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    from onboarding.models import ServicePrincipal
    from onboarding.service_principals import service_principal_is_usable
    from onboarding.tokens import user_object_id

    if claims.get("idtyp") == APP:
        principal = ServicePrincipal.objects.filter(client_id=claims.get("appid")).first()
        if principal is None or str(principal.object_id) != str(claims.get("oid")):
            raise ArmAuthenticationFailed("The service principal of this token no longer exists.")
        if not service_principal_is_usable(service_principal=principal):
            raise ArmAuthenticationFailed("The service principal of this token has been revoked or has expired.")
        return Principal(
            kind=APP,
            object_id=str(principal.object_id),
            name=str(principal.client_id),
            role=principal.role,
            scope=principal.scope,
            client_id=str(principal.client_id),
            claims=claims,
            service_principal=principal,
        )
    if claims.get("idtyp") == USER:
        user = get_user_model()._default_manager.filter(username=claims.get("upn")).first()
        if user is None or not user.is_active or user_object_id(user) != claims.get("oid"):
            raise ArmAuthenticationFailed("The user of this token no longer exists or is inactive.")
        from arcportal.authz import OWNER

        return Principal(
            kind=USER,
            object_id=claims["oid"],
            name=user.get_username(),
            role=OWNER,
            scope="/",
            client_id=str(claims.get("appid", "")),
            claims=claims,
            user=user,
        )
    raise ArmAuthenticationFailed("The access token has an unknown identity type.")


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        from onboarding.tokens import TokenInvalid, verify_access_token

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
        except Exception:  # a disallowed Host: still answer 401, with a relative URI
            base = ""
        return f'Bearer authorization_uri="{base}/{tenant_id}", error="invalid_token"'
