"""Fields and bases every ARM serializer shares: tags, location, RFC 3339 date-times, the error detail, and
``CompactSerializer`` (absent optional members are left out)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arcportal.arm.views import rfc3339
from machines import validation

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
