"""ARM shapes of subscriptions, resource groups, machines and extensions (API-CONTRACT.md §4–§6).

Output serializers give the wire shape explicitly (camelCase via ``source=``) and are shared by every operation that
returns the resource; input serializers are per verb and raise ARM error codes (``LocationRequired``,
``InvalidTagNameCharacters`` …) that ``arcportal.arm.errors`` puts on top of the error body. Absent optional members
(``None`` or empty strings) are left out of the output, so every member that is sent has the type the SDK models
declare. Date-times are RFC 3339 (``2026-01-02T03:04:05.123Z``).

The package splits them by resource (``fields``, ``resources``, ``machines``, ``extensions``); import from here.
"""

from machines.api.serializers.extensions import (
    ExtensionInstanceViewOutput,
    ExtensionInstanceViewStatusOutput,
    ExtensionListOutput,
    ExtensionOutput,
    ExtensionPatchInput,
    ExtensionPropertiesInput,
    ExtensionPropertiesOutput,
    ExtensionPutInput,
)
from machines.api.serializers.fields import (
    CompactSerializer,
    ErrorDetailOutput,
    LocationField,
    Rfc3339DateTimeField,
    TagsField,
    TagsSchema,
)
from machines.api.serializers.machines import (
    MACHINE_KINDS,
    IdentityInput,
    IdentityOutput,
    LocationDataInput,
    MachineListOutput,
    MachineOutput,
    MachinePatchInput,
    MachinePatchPropertiesInput,
    MachinePropertiesInput,
    MachinePropertiesOutput,
    MachinePutInput,
    MachineUpdatePropertiesInput,
    OsProfileInput,
    SystemDataOutput,
)
from machines.api.serializers.resources import (
    ResourceGroupListOutput,
    ResourceGroupOutput,
    ResourceGroupPatchInput,
    ResourceGroupPropertiesOutput,
    ResourceGroupPutInput,
    SubscriptionListOutput,
    SubscriptionOutput,
    SubscriptionPoliciesOutput,
)

__all__ = [
    "MACHINE_KINDS",
    "CompactSerializer",
    "ErrorDetailOutput",
    "ExtensionInstanceViewOutput",
    "ExtensionInstanceViewStatusOutput",
    "ExtensionListOutput",
    "ExtensionOutput",
    "ExtensionPatchInput",
    "ExtensionPropertiesInput",
    "ExtensionPropertiesOutput",
    "ExtensionPutInput",
    "IdentityInput",
    "IdentityOutput",
    "LocationDataInput",
    "LocationField",
    "MachineListOutput",
    "MachineOutput",
    "MachinePatchInput",
    "MachinePatchPropertiesInput",
    "MachinePropertiesInput",
    "MachinePropertiesOutput",
    "MachinePutInput",
    "MachineUpdatePropertiesInput",
    "OsProfileInput",
    "ResourceGroupListOutput",
    "ResourceGroupOutput",
    "ResourceGroupPatchInput",
    "ResourceGroupPropertiesOutput",
    "ResourceGroupPutInput",
    "Rfc3339DateTimeField",
    "SubscriptionListOutput",
    "SubscriptionOutput",
    "SubscriptionPoliciesOutput",
    "SystemDataOutput",
    "TagsField",
    "TagsSchema",
]
