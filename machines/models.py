"""Subscriptions → resource groups → machines → extensions (DESIGN.md §2, §7); the tenant above them is identity's.

Fields, constraints and ``__str__`` only: state changes live in ``services.py``, reads in ``selectors.py``.
"""

import uuid

from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from arcportal.arm import ids
from identity.models import Tenant
from machines.choices import MachineStatus, OsType, ProvisioningState
from machines.lookups import AsciiLower
from machines.querysets import MachineQuerySet


class Subscription(models.Model):
    subscription_id = models.UUIDField(unique=True, default=uuid.uuid4)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="subscriptions")
    display_name = models.CharField(max_length=200)
    state = models.CharField(max_length=20, default="Enabled")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def arm_id(self) -> str:
        return ids.subscription_id(str(self.subscription_id))


class ResourceGroup(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="resource_groups")
    name = models.CharField(max_length=90)
    location = models.CharField(max_length=40)
    tags = models.JSONField(default=dict, blank=True)
    managed_by = models.CharField(max_length=500, blank=True, default="")
    provisioning_state = models.CharField(
        max_length=20, choices=ProvisioningState.choices, default=ProvisioningState.SUCCEEDED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Names fold ASCII letters only, the same on every database (machines.lookups).
            models.UniqueConstraint(
                "subscription", AsciiLower("name"), name="resource_group_name_unique_ascii_ci_per_subscription"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arm_id(self) -> str:
        return ids.resource_group_id(str(self.subscription.subscription_id), self.name)


class Machine(models.Model):
    """An Azure Arc-enabled server: every field the ARM machine resource carries (API-CONTRACT.md §5)."""

    resource_group = models.ForeignKey(ResourceGroup, on_delete=models.CASCADE, related_name="machines")
    name = models.CharField(max_length=54)
    location = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, blank=True, default="")

    # Identity of the server and its agent.
    vm_id = models.UUIDField(null=True, blank=True, unique=True)
    vm_uuid = models.CharField(max_length=64, blank=True, default="")
    client_public_key = models.TextField(blank=True, default="")
    identity_type = models.CharField(max_length=20, blank=True, default="SystemAssigned")
    identity_principal_id = models.UUIDField(default=uuid.uuid4)
    certificate_thumbprint = models.CharField(max_length=40, blank=True, default="", db_index=True)
    certificate_expires_at = models.DateTimeField(null=True, blank=True)

    # Operating system and host facts reported by the agent.
    os_name = models.CharField(max_length=20, choices=OsType.choices, blank=True, default="")
    os_type = models.CharField(max_length=20, blank=True, default="")
    os_version = models.CharField(max_length=100, blank=True, default="")
    os_sku = models.CharField(max_length=200, blank=True, default="")
    os_edition = models.CharField(max_length=100, blank=True, default="")
    computer_name = models.CharField(max_length=255, blank=True, default="")
    display_name = models.CharField(max_length=255, blank=True, default="")
    machine_fqdn = models.CharField(max_length=255, blank=True, default="")
    dns_fqdn = models.CharField(max_length=255, blank=True, default="")
    ad_fqdn = models.CharField(max_length=255, blank=True, default="")
    domain_name = models.CharField(max_length=255, blank=True, default="")
    agent_version = models.CharField(max_length=50, blank=True, default="")
    mssql_discovered = models.CharField(max_length=10, blank=True, default="false")
    detected_properties = models.JSONField(default=dict, blank=True)
    # Writable ARM sub-objects kept as given: locationData, osProfile extras, cloudMetadata, agentUpgrade,
    # parentClusterResourceId, privateLinkScopeResourceId, identityKeyStore, tpmEkCertificate, agentConfiguration.
    extra_properties = models.JSONField(default=dict, blank=True)
    error_details = models.JSONField(default=list, blank=True)

    # Status: derived on read from last_heartbeat_at; ``status``/``last_status_change`` record transitions.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=MachineStatus.choices, default=MachineStatus.AWAITING)
    last_status_change = models.DateTimeField(null=True, blank=True)
    provisioning_state = models.CharField(
        max_length=20, choices=ProvisioningState.choices, default=ProvisioningState.SUCCEEDED
    )

    # How it got here.
    correlation_id = models.CharField(max_length=64, blank=True, default="")
    onboarding_method = models.CharField(max_length=40, blank=True, default="")
    onboarded_by = models.CharField(max_length=200, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_by_type = models.CharField(max_length=20, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=200, blank=True, default="")
    updated_by_type = models.CharField(max_length=20, blank=True, default="")

    objects = MachineQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "resource_group", AsciiLower("name"), name="machine_name_unique_ascii_ci_per_resource_group"
            ),
        ]
        indexes = [
            models.Index(Lower("name"), name="machine_name_lower_idx"),
            # The blade's filters with the heartbeat, so that the counts strip of a filtered list is an index-only
            # scan of the matching entries (docs/decisions.md 99); they also serve the filters alone.
            models.Index(fields=["location", "os_name", "last_heartbeat_at"], name="machine_location_os_hb_idx"),
            models.Index(fields=["os_name", "last_heartbeat_at"], name="machine_os_hb_idx"),
            models.Index(fields=["resource_group", "last_heartbeat_at"], name="machine_group_hb_idx"),
            # The status sweep claims due rows by (recorded status, heartbeat range): cost ∝ transitions.
            models.Index(fields=["status", "last_heartbeat_at"], name="machine_status_heartbeat_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self, page: str = "machine-detail") -> str:
        """The machine's Overview in the portal (its resource id under ``/portal/``); ``page`` names another page of
        the machine (``machine-tags``)."""
        group = self.resource_group
        kwargs = {
            "subscription_id": group.subscription.subscription_id,
            "resource_group": group.name,
            "name": self.name,
        }
        return reverse(f"machines:{page}", kwargs=kwargs)

    @property
    def arm_id(self) -> str:
        group = self.resource_group
        return ids.machine_id(str(group.subscription.subscription_id), group.name, self.name)

    @property
    def extensions_scope(self) -> str:
        """The scope of the machine's extensions (``…/machines/{name}/extensions``)."""
        group = self.resource_group
        return ids.extensions_scope(str(group.subscription.subscription_id), group.name, self.name)


class MachineTag(models.Model):
    """One ARM tag of a machine. A row per pair (not JSON) so that ``tag=key=value`` filters use an index."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="tag_set")
    key = models.CharField(max_length=512)
    value = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint("machine", Lower("key"), name="machine_tag_key_unique_ci"),
        ]
        indexes = [models.Index(Lower("key"), "value", name="machine_tag_key_value_idx")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MachineStatusEvent(models.Model):
    """One status transition, at the exact moment it happened (the machine's activity log)."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="status_events")
    from_status = models.CharField(max_length=20, choices=MachineStatus.choices)
    to_status = models.CharField(max_length=20, choices=MachineStatus.choices)
    at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, default="")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["machine", "at"], name="status_event_machine_at_idx")]

    def __str__(self) -> str:
        return f"{self.machine_id}: {self.from_status} → {self.to_status} at {self.at:%Y-%m-%dT%H:%M:%SZ}"


class Extension(models.Model):
    """Desired state of a machine extension; the agent reports progress in ``instance_view``."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="extensions")
    name = models.CharField(max_length=64)
    location = models.CharField(max_length=40)
    tags = models.JSONField(default=dict, blank=True)
    publisher = models.CharField(max_length=200, blank=True, default="")
    type = models.CharField(max_length=200, blank=True, default="")
    type_handler_version = models.CharField(max_length=50, blank=True, default="")
    auto_upgrade_minor_version = models.BooleanField(null=True, blank=True)
    enable_automatic_upgrade = models.BooleanField(null=True, blank=True)
    force_update_tag = models.CharField(max_length=200, blank=True, default="")
    settings = models.JSONField(default=dict, blank=True)
    # Fernet ciphertext of the protectedSettings JSON; never returned by any response.
    protected_settings_encrypted = models.TextField(blank=True, default="")
    provisioning_state = models.CharField(max_length=20, default=ProvisioningState.SUCCEEDED)
    instance_view = models.JSONField(default=dict, blank=True)
    # The goal-state channel (docs/extensions.md): the last operation handed to the agent and its sequence
    # (0: never handed over), the last sequence the agent reported terminally, and that report as sent.
    sequence = models.PositiveIntegerField(default=0)
    operation = models.CharField(max_length=10, blank=True, default="")
    reported_sequence = models.PositiveIntegerField(default=0)
    last_report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("machine", AsciiLower("name"), name="extension_name_unique_ascii_ci_per_machine"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arm_id(self) -> str:
        group = self.machine.resource_group
        return ids.extension_id(str(group.subscription.subscription_id), group.name, self.machine.name, self.name)


class Webhook(models.Model):
    """An HTTP endpoint told about every status transition of the machines in its scope.

    The scope is a subscription, or one resource group of it. The signing secret is stored Fernet-encrypted
    (``arcportal.crypto``) and shown to the user once, when the webhook is created.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="webhooks")
    resource_group = models.ForeignKey(
        ResourceGroup, on_delete=models.CASCADE, related_name="webhooks", null=True, blank=True
    )
    url = models.URLField(max_length=2000)
    secret_encrypted = models.TextField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One notification of one webhook: created with the transition it reports, then posted by a worker."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        MachineStatusEvent, on_delete=models.SET_NULL, related_name="webhook_deliveries", null=True, blank=True
    )
    payload = models.JSONField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_recent_idx")]

    def __str__(self) -> str:
        return f"{self.webhook_id} #{self.pk} ({self.status_code or 'pending'})"


class HeartbeatNonce(models.Model):
    """A heartbeat token's ``jti``, kept until the token expires, when Redis cannot keep it.

    The replay check of the agent plane is one ``SET NX`` in Redis (``machines.heartbeats``); without Redis (the
    embedded defaults, or Redis not answering) the primary key here makes the check atomic across web workers.
    Expired rows are deleted by the status sweep task.
    """

    key = models.CharField(max_length=120, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)
    # Claimed while Redis was absent or failing (False: re-checked in Redis mode after an outage). The flush
    # publishes the fallback claims' horizon to Redis (machines/heartbeat_replay.py, rule 2).
    in_fallback = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.key


# Run commands and the ARM asynchronous operations of the goal-state channel (their own module: this one stays small).
# The fleet's counts summary, kept by database triggers (its own module too).
from machines.models_counts import FleetCount, FleetCountDelta  # noqa: E402
from machines.models_operations import AsyncOperation, RunCommand  # noqa: E402

__all__ = [
    "AsyncOperation",
    "Extension",
    "FleetCount",
    "FleetCountDelta",
    "HeartbeatNonce",
    "Machine",
    "MachineStatusEvent",
    "MachineTag",
    "ResourceGroup",
    "RunCommand",
    "Subscription",
    "Webhook",
    "WebhookDelivery",
]
