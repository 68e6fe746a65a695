"""Service principals: create (the plaintext secret is returned exactly once), authenticate, revoke.

Secrets are stored only as ``django.contrib.auth.hashers.make_password`` hashes and never logged. A secret is
checked with ``check_password``; expiry (default one year), revocation and ``max_uses`` are enforced here, and a
successful sign-in counts one use and records ``last_used_at`` in one conditional UPDATE (safe under concurrency).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import uuid
from dataclasses import dataclass

from django.contrib.auth import hashers
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from arcportal.arm import ids
from arcportal.exceptions import Invalid
from identity.models import PrincipalKind, Role, ServicePrincipal
from identity.role_assignments import role_assignment_ensure

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = dt.timedelta(days=365)
SECRET_BYTES = 30  # 40 URL-safe characters, like an Entra client secret


class InvalidCredentials(Exception):
    """Sign-in refused. The message says why without revealing whether the client id exists."""


# One answer for an unknown client id and a wrong secret (the token endpoint must not tell which ids exist).
WRONG_CREDENTIALS = "Invalid client secret provided, or no application with this client id exists."


@functools.lru_cache(maxsize=8)
def _dummy_hash(algorithm: str) -> str:
    """A hash made once per process (and hasher) with the current hasher, checked when the client id is unknown so
    that such an attempt costs the same hashing work as a wrong secret."""
    return hashers.make_password(secrets.token_urlsafe(SECRET_BYTES))


@dataclass(frozen=True)
class CreatedServicePrincipal:
    service_principal: ServicePrincipal
    secret: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"CreatedServicePrincipal({self.service_principal!r}, secret=***)"


def _clean_scope(scope: str) -> str:
    try:
        parsed = ids.parse(scope.strip())
    except ValueError as exc:
        raise Invalid(str(exc), code="InvalidScope", target="scope") from exc
    if parsed.kind not in ("subscription", "resourceGroup"):
        raise Invalid(
            "The scope must be a subscription (/subscriptions/{id}) or a resource group "
            "(/subscriptions/{id}/resourceGroups/{name}).",
            code="InvalidScope",
            target="scope",
        )
    try:
        uuid.UUID(parsed.subscription or "")
    except ValueError as exc:
        raise Invalid(f"'{parsed.subscription}' is not a subscription id (a GUID).", code="InvalidScope") from exc
    return parsed.to_string()


@transaction.atomic
def service_principal_create(
    *,
    display_name: str,
    role: str,
    scope: str,
    expires_at: dt.datetime | None = None,
    max_uses: int | None = None,
    created_by=None,
    now: dt.datetime | None = None,
) -> CreatedServicePrincipal:
    """Create a service principal with a new random secret. The plaintext is in the result and nowhere else."""
    now = now or timezone.now()
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 200:
        raise Invalid("The display name must be 1 to 200 characters.", target="displayName")
    if role not in Role.values:
        raise Invalid(f"Unknown role '{role}'. Use one of: {', '.join(Role.values)}.", code="InvalidRole")
    expires_at = expires_at or now + DEFAULT_LIFETIME
    if expires_at <= now:
        raise Invalid("The expiry must be in the future.", target="expiresAt")
    if max_uses is not None and max_uses < 1:
        raise Invalid("max_uses must be at least 1.", target="maxUses")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    principal = ServicePrincipal.objects.create(
        display_name=display_name,
        secret_hash=make_password(secret),
        role=role,
        scope=_clean_scope(scope),
        expires_at=expires_at,
        max_uses=max_uses,
        created_by=created_by,
    )
    role_assignment_ensure(
        principal_id=str(principal.object_id),
        principal_kind=PrincipalKind.APP,
        role=role,
        scope=principal.scope,
        created_by=getattr(created_by, "username", "") or "",
    )
    logger.info("service principal %s (%s) created: %s at %s", principal.client_id, display_name, role, principal.scope)
    return CreatedServicePrincipal(principal, secret)


def service_principal_authenticate(*, client_id: str, secret: str, now: dt.datetime | None = None) -> ServicePrincipal:
    """The service principal whose secret this is, if it may still sign in; counts one use."""
    now = now or timezone.now()
    try:
        principal = ServicePrincipal.objects.filter(client_id=uuid.UUID(str(client_id))).first()
    except ValueError:
        principal = None
    if principal is None:
        # The same check a real secret gets, against a dummy hash: timing doesn't reveal unknown client ids.
        check_password(secret, _dummy_hash(hashers.get_hasher().algorithm))
        raise InvalidCredentials(WRONG_CREDENTIALS)
    if not check_password(secret, principal.secret_hash):
        logger.info("service principal %s: wrong secret", principal.client_id)
        raise InvalidCredentials(WRONG_CREDENTIALS)
    if principal.revoked_at is not None:
        raise InvalidCredentials(f"The service principal '{client_id}' has been revoked.")
    if principal.expires_at <= now:
        raise InvalidCredentials(f"The client secret of application '{client_id}' has expired.")
    counted = (
        ServicePrincipal.objects.filter(pk=principal.pk)
        .filter(Q(max_uses__isnull=True) | Q(use_count__lt=F("max_uses")))
        .update(use_count=F("use_count") + 1, last_used_at=now)
    )
    if not counted:
        raise InvalidCredentials(f"The service principal '{client_id}' has reached its maximum number of uses.")
    principal.refresh_from_db(fields=["use_count", "last_used_at"])
    return principal


def service_principal_is_usable(*, service_principal: ServicePrincipal, now: dt.datetime | None = None) -> bool:
    """Tokens already issued stop working once their principal is revoked or expired."""
    now = now or timezone.now()
    return service_principal.revoked_at is None and service_principal.expires_at > now


@transaction.atomic
def service_principal_revoke(
    *, service_principal: ServicePrincipal, now: dt.datetime | None = None
) -> ServicePrincipal:
    if service_principal.revoked_at is None:
        service_principal.revoked_at = now or timezone.now()
        service_principal.save(update_fields=["revoked_at"])
        logger.info("service principal %s revoked", service_principal.client_id)
    return service_principal
