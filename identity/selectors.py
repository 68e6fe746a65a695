"""Reads of the identity app: the tenant and service principals. Selectors return model instances or querysets.

A malformed id (not a GUID) is "not found" (``None``); anything else that goes wrong, such as a database that does
not answer, is raised as it is (never turned into "not found").
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils import timezone

from identity.models import ServicePrincipal, Tenant

# Tenant aliases of the Microsoft identity platform that mean "whatever tenant the account is in".
TENANT_ALIASES = ("organizations", "common")


def _guid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def tenant_get() -> Tenant | None:
    """The installation's tenant (``None`` before the bootstrap)."""
    return Tenant.objects.order_by("id").first()


def tenant_get_by_id(*, tenant_id: str) -> Tenant | None:
    """The tenant named in an identity URL: our tenant GUID in any case; anything else is ``None``."""
    value = _guid(tenant_id)
    if value is None:
        return None
    return Tenant.objects.filter(tenant_id=value).first()


def tenant_is_known(tenant: str) -> bool:
    """The tenant segment of an identity URL: this installation's tenant GUID (or the ``organizations`` alias)."""
    if tenant.lower() in TENANT_ALIASES:
        return True
    return tenant_get_by_id(tenant_id=tenant) is not None


def service_principal_list() -> QuerySet[ServicePrincipal]:
    return ServicePrincipal.objects.select_related("created_by").order_by("-created_at", "display_name")


def service_principal_list_usable() -> QuerySet[ServicePrincipal]:
    """Service principals that can still sign in: not revoked, not expired."""
    return ServicePrincipal.objects.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "display_name"
    )


def service_principal_get(*, client_id: str) -> ServicePrincipal | None:
    value = _guid(client_id)
    if value is None:
        return None
    return ServicePrincipal.objects.filter(client_id=value).first()


def service_principal_by_app_id(*, app_id: object) -> ServicePrincipal | None:
    """The service principal a token's ``appid`` claim names (its client id)."""
    return service_principal_get(client_id=str(app_id))
