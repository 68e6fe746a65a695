"""ARM's generic resource shape (``GenericResourceExpanded``): what ``GET …/resources`` lists for every resource,
whatever its type — id, name, type, location, tags, kind and identity, plus ``createdTime``, ``changedTime`` and
``provisioningState`` when ``$expand`` asks for them. No ``properties`` (ARM leaves them out of this list)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from arcportal.arm import ids
from arcportal.arm.views import rfc3339
from machines.api.serializers.fields import CompactSerializer, TagsField
from machines.api.serializers.machines import IdentityOutput
from machines.models import Machine


class GenericResourceOutput(CompactSerializer):
    """A machine or a machine extension as a generic resource (context: ``tenant_id``, ``expand``)."""

    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    location = serializers.CharField()
    kind = serializers.CharField(required=False)
    tags = TagsField()
    identity = IdentityOutput(required=False)
    createdTime = serializers.CharField(required=False)
    changedTime = serializers.CharField(required=False)
    provisioningState = serializers.CharField(required=False)

    def to_representation(self, instance):
        return super().to_representation(self._fields_of(instance))

    def _fields_of(self, row) -> dict[str, Any]:
        expand = self.context.get("expand", frozenset())
        if isinstance(row, Machine):
            body = {
                "id": row.arm_id,
                "name": row.name,
                "type": ids.MACHINE_TYPE,
                "location": row.location,
                "kind": row.kind or None,
                "tags": {tag.key: tag.value for tag in row.tag_set.all()},
                "identity": (
                    {
                        "type": "SystemAssigned",
                        "principalId": str(row.identity_principal_id),
                        "tenantId": self.context["tenant_id"],
                    }
                    if row.identity_type == "SystemAssigned"
                    else None
                ),
            }
        else:
            body = {
                "id": row.arm_id,
                "name": f"{row.machine.name}/{row.name}",
                "type": ids.EXTENSION_TYPE,
                "location": row.location,
                "tags": dict(row.tags or {}),
            }
        if "createdTime" in expand:
            body["createdTime"] = rfc3339(row.created_at)
        if "changedTime" in expand:
            body["changedTime"] = rfc3339(row.updated_at)
        if "provisioningState" in expand:
            body["provisioningState"] = row.provisioning_state
        return body


class GenericResourceListOutput(serializers.Serializer):
    value = GenericResourceOutput(many=True)
    nextLink = serializers.URLField(required=False)
