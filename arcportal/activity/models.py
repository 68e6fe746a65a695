"""One activity-log event (Azure's EventData, trimmed to what ArcPortal knows). Fields and indexes only."""

import uuid

from django.db import models


class ActivityEvent(models.Model):
    event_data_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Azure gives the Started and the Succeeded/Failed events of one operation the same operationId.
    operation_id = models.UUIDField(default=uuid.uuid4)
    event_timestamp = models.DateTimeField(db_index=True)
    operation_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20)
    level = models.CharField(max_length=20, default="Informational")
    category = models.CharField(max_length=40, default="Administrative")
    caller = models.CharField(max_length=256, blank=True, default="")
    caller_ip = models.CharField(max_length=64, blank=True, default="")
    correlation_id = models.CharField(max_length=200, blank=True, default="")
    resource_id = models.CharField(max_length=1024)
    # Derived from resource_id on write so scope filters are index lookups: lower-case, ASCII folding.
    resource_key = models.CharField(max_length=1024, db_index=True)
    subscription_id = models.CharField(max_length=64, blank=True, default="")
    resource_group = models.CharField(max_length=90, blank=True, default="")
    resource_provider = models.CharField(max_length=200, blank=True, default="")
    resource_type = models.CharField(max_length=200, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-event_timestamp", "-id"]
        indexes = [
            models.Index(fields=["subscription_id", "event_timestamp"], name="activity_sub_time_idx"),
            models.Index(fields=["subscription_id", "resource_group", "event_timestamp"], name="activity_rg_time_idx"),
            models.Index(fields=["correlation_id"], name="activity_correlation_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_timestamp:%Y-%m-%dT%H:%M:%SZ} {self.operation_name} {self.status} {self.resource_id}"
