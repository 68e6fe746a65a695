"""Onboarding: service principals, device codes, generated scripts and failure reports (DESIGN.md §4, §7).

Secrets are never stored in plain text: service-principal secrets are hashed with Django's password hashers,
device codes with SHA-256 (they are high-entropy and looked up by value).
"""

import uuid

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
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
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.client_id})"


class DeviceCodeState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


class DeviceCode(models.Model):
    """An RFC 8628 device authorization. ``device_code_hash`` is the SHA-256 of the secret device code."""

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
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user_code} ({self.state})"


class ScriptGeneration(models.Model):
    """One generated onboarding script: its correlation id, who generated it, when, and with which options."""

    correlation_id = models.UUIDField(unique=True, default=uuid.uuid4)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    os = models.CharField(max_length=10)
    auth_type = models.CharField(max_length=10)
    options = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.correlation_id)


class OnboardingFailure(models.Model):
    """A failure report sent by a script to ``PUT /his/log``."""

    correlation_id = models.CharField(max_length=64, db_index=True, blank=True, default="")
    operation = models.CharField(max_length=100, blank=True, default="")
    message_type = models.CharField(max_length=200, blank=True, default="")
    message = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.correlation_id}: {self.message_type}"
