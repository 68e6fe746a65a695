"""ARM shapes of machines (API-CONTRACT.md §5): per-verb inputs, and the output every operation shares, whose
``status`` is derived from the last heartbeat at request time."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arcportal.arm import ids
from arcportal.arm.views import rfc3339
from machines import status as rules
from machines.api.serializers.extensions import ExtensionOutput
from machines.api.serializers.fields import (
    CompactSerializer,
    ErrorDetailOutput,
    LocationField,
    Rfc3339DateTimeField,
    TagsField,
    TagsSchema,
)

MACHINE_KINDS = ("AVS", "HCI", "SCVMM", "VMware", "EPS", "GCP", "AWS")


class IdentityInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["SystemAssigned", "None"])


class IdentityOutput(serializers.Serializer):
    type = serializers.CharField()
    principalId = serializers.CharField(required=False)
    tenantId = serializers.CharField(required=False)


class SystemDataOutput(CompactSerializer):
    """Who created and last modified the resource, and when (RFC 3339)."""

    createdBy = serializers.CharField(source="created_by", required=False)
    createdByType = serializers.CharField(source="created_by_type", required=False)
    createdAt = Rfc3339DateTimeField(source="created_at", required=False)
    lastModifiedBy = serializers.CharField(source="updated_by", required=False)
    lastModifiedByType = serializers.CharField(source="updated_by_type", required=False)
    lastModifiedAt = Rfc3339DateTimeField(source="updated_at", required=False)


class OsProfileInput(serializers.Serializer):
    computerName = serializers.CharField(required=False, max_length=255)
    windowsConfiguration = serializers.DictField(required=False)
    linuxConfiguration = serializers.DictField(required=False)


class LocationDataInput(serializers.Serializer):
    name = serializers.CharField(max_length=256)
    city = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    district = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    countryOrRegion = serializers.CharField(required=False, allow_null=True, allow_blank=True)


class MachineUpdatePropertiesInput(serializers.Serializer):
    """The writable subset of a PATCH (API-CONTRACT.md §5)."""

    locationData = LocationDataInput(required=False)
    osProfile = OsProfileInput(required=False)
    cloudMetadata = serializers.DictField(required=False)
    agentUpgrade = serializers.DictField(required=False)
    parentClusterResourceId = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    privateLinkScopeResourceId = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    identityKeyStore = serializers.ChoiceField(choices=["Default", "TPM"], required=False)
    tpmEkCertificate = serializers.CharField(required=False, allow_blank=True)


class MachinePropertiesInput(MachineUpdatePropertiesInput):
    """A PUT's properties: the PATCH subset plus what an agent reports. Read-only members are ignored."""

    vmId = serializers.UUIDField(required=False, allow_null=True)
    vmUuid = serializers.CharField(required=False, allow_blank=True, max_length=64)
    clientPublicKey = serializers.CharField(required=False, allow_blank=True)
    osName = serializers.CharField(required=False, allow_blank=True, max_length=20)
    osType = serializers.CharField(required=False, allow_blank=True, max_length=20)
    osVersion = serializers.CharField(required=False, allow_blank=True, max_length=100)
    osSku = serializers.CharField(required=False, allow_blank=True, max_length=200)
    osEdition = serializers.CharField(required=False, allow_blank=True, max_length=100)
    displayName = serializers.CharField(required=False, allow_blank=True, max_length=255)
    machineFqdn = serializers.CharField(required=False, allow_blank=True, max_length=255)
    dnsFqdn = serializers.CharField(required=False, allow_blank=True, max_length=255)
    adFqdn = serializers.CharField(required=False, allow_blank=True, max_length=255)
    domainName = serializers.CharField(required=False, allow_blank=True, max_length=255)
    agentVersion = serializers.CharField(required=False, allow_blank=True, max_length=50)
    mssqlDiscovered = serializers.CharField(required=False, allow_blank=True, max_length=10)
    detectedProperties = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    licenseProfile = serializers.DictField(required=False)
    serviceStatuses = serializers.DictField(required=False)
    agentConfiguration = serializers.DictField(required=False)

    def validate_osName(self, value):
        if value and value.lower() not in ("linux", "windows"):
            raise serializers.ValidationError("osName must be 'linux' or 'windows'.", code="InvalidOsName")
        return value


class MachinePutInput(serializers.Serializer):
    location = LocationField()
    tags = TagsField(required=False)
    identity = IdentityInput(required=False)
    kind = serializers.ChoiceField(choices=MACHINE_KINDS, required=False, allow_null=True)
    properties = MachinePropertiesInput(required=False)


class MachinePatchPropertiesInput(MachineUpdatePropertiesInput):
    """A PATCH's properties. ``vmId`` and ``clientPublicKey`` are accepted only unchanged (what GET returned):
    the service answers 400 ``PropertyChangeNotAllowed`` to any other value."""

    vmId = serializers.UUIDField(required=False, allow_null=True)
    clientPublicKey = serializers.CharField(required=False, allow_blank=True)


class MachinePatchInput(serializers.Serializer):
    tags = TagsField(required=False)
    identity = IdentityInput(required=False)
    kind = serializers.ChoiceField(choices=MACHINE_KINDS, required=False, allow_null=True)
    properties = MachinePatchPropertiesInput(required=False)


class MachinePropertiesOutput(CompactSerializer):
    """A machine's properties; ``status`` is derived from the last heartbeat at request time."""

    provisioningState = serializers.CharField(source="provisioning_state")
    status = serializers.SerializerMethodField()
    lastStatusChange = serializers.SerializerMethodField()
    agentVersion = serializers.CharField(source="agent_version", required=False)
    osName = serializers.CharField(source="os_name", required=False)
    osType = serializers.CharField(source="os_type", required=False)
    osVersion = serializers.CharField(source="os_version", required=False)
    osSku = serializers.CharField(source="os_sku", required=False)
    osEdition = serializers.CharField(source="os_edition", required=False)
    vmId = serializers.UUIDField(source="vm_id", required=False)
    vmUuid = serializers.CharField(source="vm_uuid", required=False)
    clientPublicKey = serializers.CharField(source="client_public_key", required=False)
    displayName = serializers.CharField(source="display_name", required=False)
    machineFqdn = serializers.CharField(source="machine_fqdn", required=False)
    dnsFqdn = serializers.CharField(source="dns_fqdn", required=False)
    adFqdn = serializers.CharField(source="ad_fqdn", required=False)
    domainName = serializers.CharField(source="domain_name", required=False)
    mssqlDiscovered = serializers.CharField(source="mssql_discovered", required=False)
    detectedProperties = serializers.DictField(source="detected_properties", child=serializers.CharField())
    osProfile = serializers.SerializerMethodField()
    errorDetails = ErrorDetailOutput(source="error_details", many=True)
    locationData = serializers.SerializerMethodField()
    cloudMetadata = serializers.SerializerMethodField()
    agentUpgrade = serializers.SerializerMethodField()
    parentClusterResourceId = serializers.SerializerMethodField()
    privateLinkScopeResourceId = serializers.SerializerMethodField()
    identityKeyStore = serializers.SerializerMethodField()
    tpmEkCertificate = serializers.SerializerMethodField()
    licenseProfile = serializers.SerializerMethodField()
    serviceStatuses = serializers.SerializerMethodField()
    agentConfiguration = serializers.SerializerMethodField()

    def _extra(self, obj, name):
        return (obj.extra_properties or {}).get(name)

    @extend_schema_field(serializers.ChoiceField(choices=rules.ARM_STATUS_VALUES))
    def get_status(self, obj) -> str:
        return rules.derive_status(
            last_heartbeat_at=obj.last_heartbeat_at, now=self.context["now"], thresholds=self.context["thresholds"]
        )

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_lastStatusChange(self, obj) -> str | None:
        derived = self.get_status(obj)
        if derived == obj.status and obj.last_status_change is not None:
            return rfc3339(obj.last_status_change)
        if derived == rules.AWAITING:
            return rfc3339(obj.last_status_change or obj.created_at)
        # The sweep has not recorded this transition yet: its exact time follows from the last heartbeat.
        return rfc3339(
            rules.transition_time(
                last_heartbeat_at=obj.last_heartbeat_at, status=derived, thresholds=self.context["thresholds"]
            )
        )

    @extend_schema_field({"type": "object", "properties": {"computerName": {"type": "string"}}})
    def get_osProfile(self, obj) -> dict:
        profile = dict(self._extra(obj, "osProfile") or {})
        if obj.computer_name:
            profile["computerName"] = obj.computer_name
        return profile

    @extend_schema_field({"type": "object"})
    def get_locationData(self, obj):
        return self._extra(obj, "locationData")

    @extend_schema_field({"type": "object"})
    def get_cloudMetadata(self, obj):
        return self._extra(obj, "cloudMetadata")

    @extend_schema_field({"type": "object"})
    def get_agentUpgrade(self, obj):
        return self._extra(obj, "agentUpgrade")

    @extend_schema_field(OpenApiTypes.STR)
    def get_parentClusterResourceId(self, obj):
        return self._extra(obj, "parentClusterResourceId")

    @extend_schema_field(OpenApiTypes.STR)
    def get_privateLinkScopeResourceId(self, obj):
        return self._extra(obj, "privateLinkScopeResourceId")

    @extend_schema_field(OpenApiTypes.STR)
    def get_identityKeyStore(self, obj):
        return self._extra(obj, "identityKeyStore")

    @extend_schema_field(OpenApiTypes.STR)
    def get_tpmEkCertificate(self, obj):
        return self._extra(obj, "tpmEkCertificate")

    @extend_schema_field({"type": "object"})
    def get_licenseProfile(self, obj):
        return self._extra(obj, "licenseProfile")

    @extend_schema_field({"type": "object"})
    def get_serviceStatuses(self, obj):
        return self._extra(obj, "serviceStatuses")

    @extend_schema_field({"type": "object"})
    def get_agentConfiguration(self, obj):
        return self._extra(obj, "agentConfiguration")


class MachineOutput(CompactSerializer):
    """A Microsoft.HybridCompute/machines resource (an Azure Arc-enabled server)."""

    id = serializers.CharField(source="arm_id")
    name = serializers.CharField()
    type = serializers.SerializerMethodField()
    location = serializers.CharField()
    kind = serializers.CharField(required=False)
    tags = serializers.SerializerMethodField()
    identity = serializers.SerializerMethodField()
    properties = MachinePropertiesOutput(source="*")
    resources = serializers.SerializerMethodField()
    systemData = SystemDataOutput(source="*")

    def get_type(self, obj) -> str:
        return ids.MACHINE_TYPE

    @extend_schema_field(TagsSchema)
    def get_tags(self, obj) -> dict:
        return {tag.key: tag.value for tag in obj.tag_set.all()}

    @extend_schema_field(IdentityOutput(required=False))
    def get_identity(self, obj) -> dict | None:
        if obj.identity_type != "SystemAssigned":
            return None
        return {
            "type": "SystemAssigned",
            "principalId": str(obj.identity_principal_id),
            "tenantId": self.context["tenant_id"],
        }

    @extend_schema_field(ExtensionOutput(many=True))
    def get_resources(self, obj) -> list | None:
        """The machine's extensions, left out for callers who may not read extensions (``may_read_extensions``)."""
        may_read = self.context.get("may_read_extensions")
        if may_read is None or not may_read(obj):
            return None
        return ExtensionOutput(obj.extensions.all(), many=True, context=self.context).data


class MachineListOutput(serializers.Serializer):
    value = MachineOutput(many=True)
    nextLink = serializers.URLField(required=False)
