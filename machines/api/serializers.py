"""ARM shapes of subscriptions, resource groups, machines and extensions (API-CONTRACT.md §4–§6).

Output serializers give the wire shape explicitly (camelCase via ``source=``) and are shared by every operation that
returns the resource; input serializers are per verb and raise ARM error codes (``LocationRequired``,
``InvalidTagNameCharacters`` …) that ``arcportal.arm.errors`` puts on top of the error body. Absent optional members
(``None`` or empty strings) are left out of the output, so every member that is sent has the type the SDK models
declare. Date-times are RFC 3339 (``2026-01-02T03:04:05.123Z``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arcportal.arm import ids
from arcportal.arm.views import rfc3339
from machines import status as rules
from machines import validation

# --- Shared fields -------------------------------------------------------------------------------------------

TagsSchema = {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": validation.MAX_TAGS}


class Rfc3339DateTimeField(serializers.DateTimeField):
    def to_representation(self, value):
        return rfc3339(value)


@extend_schema_field(TagsSchema)
class TagsField(serializers.Field):
    """An ARM tag set: an object of up to 50 string values; names ≤ 512 characters without ``< > % & \\ ? /``."""

    def to_internal_value(self, data):
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Tags must be an object of names to string values.", code="InvalidTag")
        if len(data) > validation.MAX_TAGS:
            raise serializers.ValidationError(
                f"A resource can have at most {validation.MAX_TAGS} tags; {len(data)} were given.", code="TooManyTags"
            )
        seen: set[str] = set()
        for name, value in data.items():
            if any(char in validation.FORBIDDEN_TAG_NAME_CHARS for char in name):
                raise serializers.ValidationError(
                    f"The tag name '{name}' has invalid characters: < > % & \\ ? / are not allowed.",
                    code="InvalidTagNameCharacters",
                )
            try:
                validation.validate_tag_name(name)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc), code="InvalidTagName") from exc
            if not isinstance(value, str):
                raise serializers.ValidationError(
                    f"The value of tag '{name}' must be a string.", code="InvalidTagValue"
                )
            try:
                validation.validate_tag_value(name, value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc), code="InvalidTagValueLength") from exc
            if name.casefold() in seen:
                raise serializers.ValidationError(
                    f"The tag name '{name}' is given twice (tag names are case-insensitive).", code="DuplicateTagName"
                )
            seen.add(name.casefold())
        return dict(data)

    def to_representation(self, value):
        return dict(value or {})


class LocationField(serializers.CharField):
    """A supported region (``eastus``; display names such as ``East US`` are normalized). Missing →
    ``LocationRequired``; unknown → ``unavailable_code``."""

    def __init__(self, *, unavailable_code: str = "LocationNotAvailableForResourceType", **kwargs):
        self.unavailable_code = unavailable_code
        super().__init__(**kwargs)

    def fail(self, key, **kwargs):
        if key in ("required", "null", "blank"):
            raise serializers.ValidationError(
                "The location property is required for this definition.", code="LocationRequired"
            )
        super().fail(key, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return validation.validate_location(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code=self.unavailable_code) from exc


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    target = serializers.CharField(required=False)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None and value != ""}


class CompactSerializer(serializers.Serializer):
    """Leaves out members whose value is ``None`` or ``""`` (every such field is declared ``required=False``)."""

    def to_representation(self, instance):
        return _compact(super().to_representation(instance))


# --- Subscriptions -------------------------------------------------------------------------------------------


class SubscriptionPoliciesOutput(serializers.Serializer):
    locationPlacementId = serializers.CharField()
    quotaId = serializers.CharField()
    spendingLimit = serializers.CharField()


class SubscriptionOutput(serializers.Serializer):
    id = serializers.CharField(source="arm_id")
    subscriptionId = serializers.CharField(source="subscription_id")
    tenantId = serializers.CharField(source="tenant.tenant_id")
    displayName = serializers.CharField(source="display_name")
    state = serializers.CharField()
    subscriptionPolicies = serializers.SerializerMethodField()
    authorizationSource = serializers.SerializerMethodField()
    managedByTenants = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()

    @extend_schema_field(SubscriptionPoliciesOutput)
    def get_subscriptionPolicies(self, obj) -> dict[str, str]:
        return {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}

    def get_authorizationSource(self, obj) -> str:
        return "RoleBased"

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_managedByTenants(self, obj) -> list:
        return []

    @extend_schema_field(TagsSchema)
    def get_tags(self, obj) -> dict:
        return {}


class SubscriptionListOutput(serializers.Serializer):
    value = SubscriptionOutput(many=True)
    nextLink = serializers.URLField(required=False)


# --- Resource groups -----------------------------------------------------------------------------------------


class ResourceGroupPropertiesOutput(serializers.Serializer):
    provisioningState = serializers.CharField(source="provisioning_state")


class ResourceGroupOutput(CompactSerializer):
    """A Microsoft.Resources/resourceGroups resource."""

    id = serializers.CharField(source="arm_id")
    name = serializers.CharField()
    type = serializers.SerializerMethodField()
    location = serializers.CharField()
    managedBy = serializers.CharField(source="managed_by", required=False)
    tags = TagsField()
    properties = ResourceGroupPropertiesOutput(source="*")

    def get_type(self, obj) -> str:
        return ids.RESOURCE_GROUP_TYPE


class ResourceGroupListOutput(serializers.Serializer):
    value = ResourceGroupOutput(many=True)
    nextLink = serializers.URLField(required=False)


class ResourceGroupPutInput(serializers.Serializer):
    location = LocationField(unavailable_code="LocationNotAvailableForResourceGroup")
    tags = TagsField(required=False)
    managedBy = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=500)


class ResourceGroupPatchInput(serializers.Serializer):
    tags = TagsField(required=False)
    managedBy = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=500)


# --- Machines ------------------------------------------------------------------------------------------------

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


class ExtensionInstanceViewStatusOutput(serializers.Serializer):
    code = serializers.CharField(required=False)
    level = serializers.ChoiceField(choices=["Info", "Warning", "Error"], required=False)
    displayStatus = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    time = serializers.CharField(required=False)


class ExtensionInstanceViewOutput(serializers.Serializer):
    name = serializers.CharField(required=False)
    type = serializers.CharField(required=False)
    typeHandlerVersion = serializers.CharField(required=False)
    status = ExtensionInstanceViewStatusOutput(required=False)


class ExtensionPropertiesOutput(CompactSerializer):
    """An extension's properties. ``protectedSettings`` are stored encrypted and never returned."""

    publisher = serializers.CharField(required=False)
    type = serializers.CharField(required=False)
    typeHandlerVersion = serializers.CharField(source="type_handler_version", required=False)
    autoUpgradeMinorVersion = serializers.BooleanField(source="auto_upgrade_minor_version", required=False)
    enableAutomaticUpgrade = serializers.BooleanField(source="enable_automatic_upgrade", required=False)
    forceUpdateTag = serializers.CharField(source="force_update_tag", required=False)
    settings = serializers.DictField(required=False)
    provisioningState = serializers.CharField(source="provisioning_state")
    instanceView = serializers.SerializerMethodField()

    @extend_schema_field(ExtensionInstanceViewOutput(required=False))
    def get_instanceView(self, obj) -> dict | None:
        return dict(obj.instance_view) if obj.instance_view else None


class ExtensionOutput(CompactSerializer):
    """A Microsoft.HybridCompute/machines/extensions resource."""

    id = serializers.CharField(source="arm_id")
    name = serializers.CharField()
    type = serializers.SerializerMethodField()
    location = serializers.CharField(required=False)
    tags = TagsField()
    properties = ExtensionPropertiesOutput(source="*")

    def get_type(self, obj) -> str:
        return ids.EXTENSION_TYPE


class ExtensionListOutput(serializers.Serializer):
    value = ExtensionOutput(many=True)
    nextLink = serializers.URLField(required=False)


class ExtensionPropertiesInput(serializers.Serializer):
    publisher = serializers.CharField(required=False, allow_blank=True, max_length=200)
    type = serializers.CharField(required=False, allow_blank=True, max_length=200)
    typeHandlerVersion = serializers.CharField(required=False, allow_blank=True, max_length=50)
    autoUpgradeMinorVersion = serializers.BooleanField(required=False, allow_null=True)
    enableAutomaticUpgrade = serializers.BooleanField(required=False, allow_null=True)
    forceUpdateTag = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    settings = serializers.DictField(required=False, allow_null=True)
    protectedSettings = serializers.DictField(required=False, allow_null=True, write_only=True)


class ExtensionPutInput(serializers.Serializer):
    location = LocationField(required=False)
    tags = TagsField(required=False)
    properties = ExtensionPropertiesInput(required=False)


class ExtensionPatchInput(serializers.Serializer):
    tags = TagsField(required=False)
    properties = ExtensionPropertiesInput(required=False)


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
