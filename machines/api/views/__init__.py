"""ARM operations on subscriptions, resource groups, machines and machine extensions (API-CONTRACT.md §4–§7).

One APIView per operation, named after its ARM operationId; each one checks permission with ``arcportal.authz.can``
(through ``ArmApiView.require``), validates input with a per-verb serializer, calls one service or selector, and
renders the shared output serializer. Lists leave only through ``arcportal.arm.pagination``, errors only through
``arcportal.arm.errors``. Extension writes finish synchronously (200 with ``provisioningState: Succeeded``, no LRO
headers), so the SDK's pollers complete with no extra request; the agent's progress shows in ``instanceView``.

The package splits them by resource (``subscriptions``, ``resource_groups``, ``machines``, ``extensions``; the
shared base in ``base``); ``machines/api/urls.py`` imports them from here.
"""

from machines.api.views.extensions import (
    MachineExtensionCreateOrUpdateApi,
    MachineExtensionDeleteApi,
    MachineExtensionGetApi,
    MachineExtensionListApi,
    MachineExtensionUpdateApi,
)
from machines.api.views.machines import (
    MachineCreateOrUpdateApi,
    MachineDeleteApi,
    MachineGetApi,
    MachineListByResourceGroupApi,
    MachineListBySubscriptionApi,
    MachineUpdateApi,
)
from machines.api.views.resource_groups import (
    ResourceGroupCheckExistenceApi,
    ResourceGroupCreateOrUpdateApi,
    ResourceGroupDeleteApi,
    ResourceGroupGetApi,
    ResourceGroupListApi,
    ResourceGroupUpdateApi,
)
from machines.api.views.subscriptions import (
    SubscriptionGetApi,
    SubscriptionListApi,
)

__all__ = [
    "MachineCreateOrUpdateApi",
    "MachineDeleteApi",
    "MachineExtensionCreateOrUpdateApi",
    "MachineExtensionDeleteApi",
    "MachineExtensionGetApi",
    "MachineExtensionListApi",
    "MachineExtensionUpdateApi",
    "MachineGetApi",
    "MachineListByResourceGroupApi",
    "MachineListBySubscriptionApi",
    "MachineUpdateApi",
    "ResourceGroupCheckExistenceApi",
    "ResourceGroupCreateOrUpdateApi",
    "ResourceGroupDeleteApi",
    "ResourceGroupGetApi",
    "ResourceGroupListApi",
    "ResourceGroupUpdateApi",
    "SubscriptionGetApi",
    "SubscriptionListApi",
]
