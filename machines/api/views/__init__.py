"""ARM operations on subscriptions, resource groups, machines and machine extensions (API-CONTRACT.md §4–§7).

One APIView per operation, named after its ARM operationId; each one checks permission with ``arcportal.authz.can``
(through ``ArmApiView.require``), validates input with a per-verb serializer, calls one service or selector, and
renders the shared output serializer. Lists leave only through ``arcportal.arm.pagination``, errors only through
``arcportal.arm.errors``. Extension and run-command writes are carried out by the agent: they answer with the LRO
headers of ``operations`` (``Azure-AsyncOperation``), which end when the agent reports.

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
from machines.api.views.operations import OperationResultGetApi, OperationStatusGetApi
from machines.api.views.resource_groups import (
    ResourceGroupCheckExistenceApi,
    ResourceGroupCreateOrUpdateApi,
    ResourceGroupDeleteApi,
    ResourceGroupGetApi,
    ResourceGroupListApi,
    ResourceGroupUpdateApi,
)
from machines.api.views.run_commands import (
    MachineRunCommandCreateOrUpdateApi,
    MachineRunCommandDeleteApi,
    MachineRunCommandGetApi,
    MachineRunCommandListApi,
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
    "MachineRunCommandCreateOrUpdateApi",
    "MachineRunCommandDeleteApi",
    "MachineRunCommandGetApi",
    "MachineRunCommandListApi",
    "MachineUpdateApi",
    "OperationResultGetApi",
    "OperationStatusGetApi",
    "ResourceGroupCheckExistenceApi",
    "ResourceGroupCreateOrUpdateApi",
    "ResourceGroupDeleteApi",
    "ResourceGroupGetApi",
    "ResourceGroupListApi",
    "ResourceGroupUpdateApi",
    "SubscriptionGetApi",
    "SubscriptionListApi",
]
