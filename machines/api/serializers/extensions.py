"""ARM shapes of machine extensions (API-CONTRACT.md §6). ``protectedSettings`` are accepted, never returned."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arcportal.arm import ids
from machines.api.serializers.fields import CompactSerializer, LocationField, TagsField


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


MAX_SETTINGS_BYTES = 256 * 1024


def check_size(value, what: str, limit: int = MAX_SETTINGS_BYTES) -> None:
    """400 when the JSON of ``value`` is over ``limit`` bytes (256 KiB: what the goal state carries per entry)."""
    size = len(value.encode()) if isinstance(value, str) else len(json.dumps(value, separators=(",", ":")).encode())
    if size > limit:
        raise serializers.ValidationError(
            {what: [f"{what} is {size} bytes; at most {limit} bytes (256 KiB) are accepted."]}, code="InvalidParameter"
        )


class ExtensionPropertiesInput(serializers.Serializer):
    publisher = serializers.CharField(required=False, allow_blank=True, max_length=200)
    type = serializers.CharField(required=False, allow_blank=True, max_length=200)
    typeHandlerVersion = serializers.CharField(required=False, allow_blank=True, max_length=50)
    autoUpgradeMinorVersion = serializers.BooleanField(required=False, allow_null=True)
    enableAutomaticUpgrade = serializers.BooleanField(required=False, allow_null=True)
    forceUpdateTag = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    settings = serializers.DictField(required=False, allow_null=True)
    protectedSettings = serializers.DictField(required=False, allow_null=True, write_only=True)

    def validate(self, attrs):
        check_size({k: attrs.get(k) for k in ("settings", "protectedSettings")}, "settings")
        return attrs


class ExtensionPutInput(serializers.Serializer):
    location = LocationField(required=False)
    tags = TagsField(required=False)
    properties = ExtensionPropertiesInput(required=False)


class ExtensionPatchInput(serializers.Serializer):
    tags = TagsField(required=False)
    properties = ExtensionPropertiesInput(required=False)
