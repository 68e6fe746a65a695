"""Onboarding: generated scripts and the failure reports scripts send (DESIGN.md §4, §7)."""

import uuid

from django.conf import settings
from django.db import models


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
