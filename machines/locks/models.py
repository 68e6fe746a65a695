"""A management lock on a scope (``scope`` is its canonical ARM id; ``scope_key`` the folded spelling lookups use)."""

from django.db import models


class LockLevel(models.TextChoices):
    CAN_NOT_DELETE = "CanNotDelete", "Delete"
    READ_ONLY = "ReadOnly", "Read-only"


class ManagementLock(models.Model):
    scope = models.CharField(max_length=1024)
    scope_key = models.CharField(max_length=1024, db_index=True)
    name = models.CharField(max_length=260)
    name_key = models.CharField(max_length=260)
    level = models.CharField(max_length=20, choices=LockLevel.choices)
    notes = models.CharField(max_length=512, blank=True, default="")
    owners = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope_key", "name_key"]
        constraints = [models.UniqueConstraint(fields=["scope_key", "name_key"], name="lock_name_unique_per_scope")]

    def __str__(self) -> str:
        return f"{self.name} ({self.level}) on {self.scope}"

    @property
    def arm_id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Authorization/locks/{self.name}"
