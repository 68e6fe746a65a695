"""State changes of the identity app that are not service principals or device codes: the tenant and the portal's
administrator account (both created by ``manage.py bootstrap``). Services are keyword-only and atomic."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from arcportal.exceptions import Conflict, Invalid
from identity.models import Tenant


@transaction.atomic
def tenant_ensure(*, tenant_id: str | None = None) -> Tenant:
    """The installation's tenant: ``ARC_TENANT_ID`` if set, otherwise the one generated on first bootstrap."""
    wanted = tenant_id or settings.ARC_TENANT_ID or None
    tenant = Tenant.objects.order_by("id").first()
    if tenant is None:
        return Tenant.objects.create(tenant_id=uuid.UUID(wanted) if wanted else uuid.uuid4())
    if wanted and str(tenant.tenant_id) != str(uuid.UUID(wanted)):
        tenant.tenant_id = uuid.UUID(wanted)
        tenant.save(update_fields=["tenant_id"])
    return tenant


@dataclass(frozen=True)
class AdminAccount:
    """What ``portal_admin_ensure`` did: ``created``, ``reset`` (password from the environment) or ``exists``.
    ``generated_password`` is set only when it created the account with a password of its own (shown once)."""

    username: str
    outcome: str
    generated_password: str = ""

    def __repr__(self) -> str:  # never print the password by accident
        return f"AdminAccount({self.username!r}, {self.outcome})"


@transaction.atomic
def portal_admin_ensure(*, username: str, password: str = "") -> AdminAccount:
    """The portal's superuser ``username``: created (with ``password``, or a generated one), its password reset to
    ``password`` when one is given and differs, or left as it is."""
    user_model = get_user_model()
    user = user_model._default_manager.filter(username=username).first()
    if user is None:
        generated = "" if password else secrets.token_urlsafe(12)
        user_model._default_manager.create_superuser(username=username, email="", password=password or generated)
        return AdminAccount(username, "created", generated)
    if password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
        return AdminAccount(username, "reset")
    return AdminAccount(username, "exists")


@transaction.atomic
def portal_user_create(*, username: str, password: str = "") -> tuple[object, str]:
    """A portal user with no role assignment: no access until one is assigned (issue 13). Returns the user and the
    generated password ("" when ``password`` was given); the plaintext is shown once and stored nowhere."""
    username = (username or "").strip()
    if not username or len(username) > 150 or any(c.isspace() for c in username):
        raise Invalid("The user name must be 1 to 150 characters without spaces.", target="username")
    user_model = get_user_model()
    if user_model._default_manager.filter(username__iexact=username).exists():
        raise Conflict(f"The user '{username}' already exists.", code="UserExists")
    if password and len(password) < 8:
        raise Invalid("The password must be at least 8 characters.", target="password")
    generated = "" if password else secrets.token_urlsafe(12)
    user = user_model._default_manager.create_user(username=username, password=password or generated)
    return user, generated
