"""ARM shapes of machine run commands (``azure-mgmt-hybridcompute`` ``machine_run_commands``).
``protectedParameters`` and ``runAsPassword`` are accepted, never returned."""

from __future__ import annotations

import re

from rest_framework import serializers

from machines.api.serializers.extensions import check_size
from machines.api.serializers.fields import CompactSerializer, LocationField, Rfc3339DateTimeField, TagsField

RUN_COMMAND_TYPE = "Microsoft.HybridCompute/machines/runCommands"
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RunCommandParameterInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    value = serializers.CharField(allow_blank=True, allow_null=True, required=False, trim_whitespace=False)

    def validate_name(self, value):
        if not PARAMETER_NAME.match(value):
            raise serializers.ValidationError(
                f"The parameter name '{value}' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*).",
                code="InvalidParameter",
            )
        return value


class RunCommandSourceInput(serializers.Serializer):
    script = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    scriptUri = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=4096)
    commandId = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    scriptUriManagedIdentity = serializers.DictField(required=False, allow_null=True)


class RunCommandPropertiesInput(serializers.Serializer):
    source = RunCommandSourceInput(required=False, allow_null=True)
    parameters = RunCommandParameterInput(many=True, required=False, allow_null=True)
    protectedParameters = RunCommandParameterInput(many=True, required=False, allow_null=True, write_only=True)
    asyncExecution = serializers.BooleanField(required=False, allow_null=True)
    runAsUser = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    runAsPassword = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, write_only=True, max_length=1024
    )
    timeoutInSeconds = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86400)
    outputBlobUri = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=4096)
    errorBlobUri = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=4096)
    outputBlobManagedIdentity = serializers.DictField(required=False, allow_null=True)
    errorBlobManagedIdentity = serializers.DictField(required=False, allow_null=True)

    def validate(self, attrs):
        source = attrs.get("source") or {}
        check_size(source.get("script") or "", "source.script")
        for name, value in (
            ("source.scriptUriManagedIdentity", source.get("scriptUriManagedIdentity")),
            ("outputBlobManagedIdentity", attrs.get("outputBlobManagedIdentity")),
            ("errorBlobManagedIdentity", attrs.get("errorBlobManagedIdentity")),
        ):
            check_size(value or {}, name, limit=4096)
        check_size(
            [dict(p) for p in (attrs.get("parameters") or []) + (attrs.get("protectedParameters") or [])],
            "parameters",
        )
        if not (source.get("script") or source.get("scriptUri") or source.get("commandId")):
            raise serializers.ValidationError(
                {"source": ["One of source.script, source.scriptUri or source.commandId is required."]},
                code="InvalidParameter",
            )
        return attrs


class RunCommandPutInput(serializers.Serializer):
    location = LocationField(required=False)
    tags = TagsField(required=False)
    properties = RunCommandPropertiesInput(required=True)


class RunCommandInstanceViewOutput(CompactSerializer):
    executionState = serializers.CharField(source="execution_state")
    executionMessage = serializers.CharField(source="execution_message", required=False)
    exitCode = serializers.IntegerField(source="exit_code", required=False, allow_null=True)
    output = serializers.CharField(required=False)
    error = serializers.CharField(required=False)
    startTime = Rfc3339DateTimeField(source="start_time", required=False, allow_null=True)
    endTime = Rfc3339DateTimeField(source="end_time", required=False, allow_null=True)


class RunCommandSourceOutput(CompactSerializer):
    script = serializers.CharField(required=False)
    scriptUri = serializers.CharField(source="script_uri", required=False)
    commandId = serializers.CharField(source="command_id", required=False)


class RunCommandPropertiesOutput(CompactSerializer):
    source = RunCommandSourceOutput(source="*")
    parameters = serializers.ListField(child=serializers.DictField(), required=False)
    asyncExecution = serializers.BooleanField(source="async_execution")
    runAsUser = serializers.CharField(source="run_as_user", required=False)
    timeoutInSeconds = serializers.IntegerField(source="timeout_in_seconds")
    outputBlobUri = serializers.CharField(source="output_blob_uri", required=False)
    errorBlobUri = serializers.CharField(source="error_blob_uri", required=False)
    provisioningState = serializers.CharField(source="provisioning_state")
    instanceView = RunCommandInstanceViewOutput(source="*")


class RunCommandOutput(CompactSerializer):
    """A Microsoft.HybridCompute/machines/runCommands resource."""

    id = serializers.CharField(source="arm_id")
    name = serializers.CharField()
    type = serializers.SerializerMethodField()
    location = serializers.CharField(required=False)
    tags = TagsField()
    properties = RunCommandPropertiesOutput(source="*")

    def get_type(self, obj) -> str:
        return RUN_COMMAND_TYPE


class RunCommandListOutput(serializers.Serializer):
    value = RunCommandOutput(many=True)
    nextLink = serializers.URLField(required=False)
