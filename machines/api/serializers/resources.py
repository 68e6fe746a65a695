"""ARM shapes of subscriptions and resource groups (API-CONTRACT.md §4)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arcportal.arm import ids
from machines.api.serializers.fields import CompactSerializer, LocationField, TagsField, TagsSchema


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
