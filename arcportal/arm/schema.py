"""OpenAPI 3 for the ARM plane (drf-spectacular).

* ``ArmEndpointEnumerator`` expands ``arm_route`` dispatchers into one operation per method, under the ARM path
  template (``/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}``) instead of the ``(?i)`` regex.
* ``ArmAutoSchema`` adds the required ``api-version`` query parameter and uses each view's ARM ``operation_id``.
* The bearer JWT scheme is documented by ``identity.schema.BearerTokenScheme`` (identity owns authentication).
* ``ErrorResponseSerializer`` is the ARM error body every documented error status returns.
"""

from __future__ import annotations

from django.urls import URLPattern
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from arcportal.arm.versioning import PARAMETER, SUPPORTED_VERSIONS


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    target = serializers.CharField(required=False)


class ErrorDetailWithDetailsSerializer(ErrorDetailSerializer):
    details = ErrorDetailSerializer(many=True, required=False)


class ErrorResponseSerializer(serializers.Serializer):
    """``{"error": {"code", "message", "target"?, "details"?}}``"""

    error = ErrorDetailWithDetailsSerializer()


def error_responses(*statuses: int) -> dict[int, type[serializers.Serializer]]:
    """Documented error statuses; 400 (api-version, body) and 401 (token) apply to every operation."""
    return dict.fromkeys(sorted({400, 401, *statuses}), ErrorResponseSerializer)


class ArmEndpointEnumerator(EndpointEnumerator):
    def _get_api_endpoints(self, patterns, prefix):
        if patterns is None:
            patterns = self.patterns
        endpoints = []
        for pattern in patterns:
            callback = getattr(pattern, "callback", None)
            if isinstance(pattern, URLPattern) and hasattr(callback, "arm_views"):
                path_regex = prefix + str(pattern.pattern)
                for method, cls in callback.arm_views.items():
                    if method.upper() in ("OPTIONS", "TRACE", "CONNECT"):
                        continue
                    endpoints.append((callback.arm_path, path_regex, method.upper(), cls.as_view()))
            else:
                endpoints.extend(super()._get_api_endpoints([pattern], prefix))
        return endpoints


class ArmSchemaGenerator(SchemaGenerator):
    endpoint_inspector_cls = ArmEndpointEnumerator


class ArmAutoSchema(AutoSchema):
    def get_operation_id(self):
        return getattr(self.view, "operation_id", "") or super().get_operation_id()

    def get_tags(self):
        operation_id = getattr(self.view, "operation_id", "")
        if operation_id:
            return [operation_id.split("_", 1)[0]]
        return super().get_tags()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if getattr(self.view, "operation_id", ""):
            parameters.append(
                OpenApiParameter(
                    PARAMETER,
                    str,
                    OpenApiParameter.QUERY,
                    required=True,
                    description=(
                        "The API version, YYYY-MM-DD or YYYY-MM-DD-preview. Any well-formed version is accepted; the "
                        f"SDKs send one of: {', '.join(SUPPORTED_VERSIONS)}."
                    ),
                    pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$",
                )
            )
        return parameters
