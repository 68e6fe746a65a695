"""Identity: the tenant, service principals' credentials and device authorizations (DESIGN.md §7).

Secrets are never stored in plain text: service-principal secrets are hashed with Django's password hashers, device
codes with SHA-256 (they are high-entropy and looked up by value).

The tables keep the names they had before the identity app existed (``machines_tenant``,
``onboarding_serviceprincipal``, ``onboarding_devicecode``): the move was a change of Django state only
(``identity/migrations/0001_initial.py``, docs/decisions.md).
"""

import uuid

from django.conf import settings
from django.db import models


class Tenant(models.Model):
    """The one tenant of this installation (``ARC_TENANT_ID`` or a GUID generated at bootstrap)."""

    tenant_id = models.UUIDField(unique=True, default=uuid.uuid4)
    display_name = models.CharField(max_length=200, default="ArcPortal")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "machines_tenant"

    def __str__(self) -> str:
        return f"{self.display_name} ({self.tenant_id})"


class Role(models.TextChoices):
    """The role a service principal is created with (it becomes a role assignment at its scope)."""

    OWNER = "Owner"
    CONTRIBUTOR = "Contributor"
    READER = "Reader"
    ONBOARDING = "Azure Connected Machine Onboarding"


class ServicePrincipal(models.Model):
    client_id = models.UUIDField(unique=True, default=uuid.uuid4)
    object_id = models.UUIDField(unique=True, default=uuid.uuid4)
    display_name = models.CharField(max_length=200)
    secret_hash = models.CharField(max_length=256)
    role = models.CharField(max_length=60, choices=Role.choices, default=Role.ONBOARDING)
    # An ARM scope: /subscriptions/{id} or /subscriptions/{id}/resourceGroups/{name}.
    scope = models.CharField(max_length=400)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "onboarding_serviceprincipal"
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.client_id})"


class DeviceCodeState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


class DeviceCode(models.Model):
    """An RFC 8628 device authorization. ``device_code_hash`` is the SHA-256 of the secret device code.

    What is asking (machine, resource group, subscription, IP) is kept as the text the device sent: ``/devicelogin``
    shows it before anyone approves, and identity needs no machine record for that."""

    device_code_hash = models.CharField(max_length=64, unique=True)
    user_code = models.CharField(max_length=16, db_index=True)
    client_id = models.CharField(max_length=100, blank=True, default="")
    scope = models.CharField(max_length=500, blank=True, default="")
    state = models.CharField(max_length=10, choices=DeviceCodeState.choices, default=DeviceCodeState.PENDING)
    expires_at = models.DateTimeField()
    interval_seconds = models.PositiveSmallIntegerField(default=5)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # What is asking, shown on /devicelogin before approval.
    requesting_ip = models.GenericIPAddressField(null=True, blank=True)
    machine_name = models.CharField(max_length=255, blank=True, default="")
    resource_group = models.CharField(max_length=90, blank=True, default="")
    subscription_id = models.CharField(max_length=64, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "onboarding_devicecode"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user_code} ({self.state})"


class PrincipalKind(models.TextChoices):
    """Who a role assignment names: a portal user, a service principal or a machine's system-assigned identity."""

    USER = "user"
    APP = "app"
    MACHINE = "machine"


class RoleAssignment(models.Model):
    """``Microsoft.Authorization/roleAssignments``: a role (built-in, ``arcportal.authz.ROLE_DEFINITIONS``) granted to
    one principal (by object id) at one scope (subscription, resource group or machine; canonical spelling).

    ``scope_key`` is the scope folded as names compare (``arcportal.arm.ids.fold_name``), so one principal holds a
    role at a scope once whatever the case the scope was written in."""

    name = models.UUIDField(unique=True, default=uuid.uuid4)
    scope = models.CharField(max_length=400)
    scope_key = models.CharField(max_length=400, db_index=True)
    role_definition_id = models.CharField(max_length=36)
    principal_id = models.UUIDField(db_index=True)
    principal_kind = models.CharField(max_length=10, choices=PrincipalKind.choices)
    description = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scope_key", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["principal_id", "role_definition_id", "scope_key"], name="role_assignment_unique_grant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role_definition_id} → {self.principal_id} at {self.scope}"


class ClientAssertionNonce(models.Model):
    """A client assertion's ``jti`` once used at the token endpoint (a machine identity's proof of possession): kept
    until the assertion has expired, so each assertion signs in once. ``key`` is the SHA-256 of client id and jti."""

    key = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key
