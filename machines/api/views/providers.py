"""Resource providers (``Providers_Get`` / ``Providers_List``): which namespaces, resource types, regions and
api-versions this portal serves. ``az resource show/tag/delete`` reads ``GET /subscriptions/{s}/providers/{ns}``
to pick the api-version of a resource type (its newest stable one) before calling the resource itself.

Every namespace listed is ``Registered`` (there is nothing to register: ``POST …/register`` is not served, see
API-CONTRACT.md §3). An unknown namespace answers ARM's 404 ``InvalidResourceNamespace``. Reading providers needs only
a visible subscription: the list says what the portal serves, nothing about the tenant's resources.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids, versioning
from arcportal.arm.errors import ArmError
from arcportal.arm.schema import error_responses
from machines.api.views.base import ArmOperation
from machines.api.views.subscriptions import visible_subscription
from machines.regions import REGIONS

LOCATED = "SupportsTags, SupportsLocation"
GRAPH_VERSIONS = ("2024-04-01", "2022-10-01", "2021-03-01")

# namespace → [(resource type, api-versions newest first, capabilities, located in the regions?)]
PROVIDERS: dict[str, list[tuple[str, tuple[str, ...], str, bool]]] = {
    ids.NAMESPACE: [
        (ids.MACHINES, versioning.HYBRIDCOMPUTE_VERSIONS, LOCATED, True),
        (f"{ids.MACHINES}/{ids.EXTENSIONS}", versioning.HYBRIDCOMPUTE_VERSIONS, LOCATED, True),
        ("locations", versioning.HYBRIDCOMPUTE_VERSIONS, "None", False),
        ("locations/operationStatus", versioning.HYBRIDCOMPUTE_VERSIONS, "None", True),
    ],
    "Microsoft.Resources": [
        ("subscriptions", versioning.SUBSCRIPTIONS_VERSIONS, "None", False),
        ("resourceGroups", versioning.RESOURCES_VERSIONS, "SupportsTags, SupportsLocation", True),
        ("resources", versioning.RESOURCES_VERSIONS, "None", False),
    ],
    "Microsoft.ResourceGraph": [("resources", GRAPH_VERSIONS, "None", False)],
}


def provider_body(subscription_id: str, namespace: str) -> dict[str, Any]:
    regions = list(REGIONS.values())
    return {
        "id": f"{ids.subscription_id(subscription_id)}/providers/{namespace}",
        "namespace": namespace,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {
                "resourceType": name,
                "locations": regions if located else [],
                "apiVersions": list(versions),
                "defaultApiVersion": next((v for v in versions if "preview" not in v), versions[0]),
                "capabilities": capabilities,
            }
            for name, versions, capabilities, located in PROVIDERS[namespace]
        ],
    }


def provider_namespace(value: str) -> str | None:
    """The canonical spelling of a namespace we serve (namespaces are case-insensitive), or None."""
    return next((name for name in PROVIDERS if ids.fold_name(name) == ids.fold_name(value)), None)


class _ProviderApi(ArmOperation):
    rbac_action = "Microsoft.Resources/subscriptions/providers/read"

    def check_subscription(self, subscription_id: str) -> None:
        if not visible_subscription(self.request.user, subscription_id):
            self.require(authz.READ, ids.subscription_id(subscription_id))
        self.get_subscription(subscription_id)


class ProviderListApi(_ProviderApi):
    operation_id = "Providers_List"

    @extend_schema(responses={200: dict, **error_responses(403, 404)})
    def get(self, request, subscriptionId):
        self.check_subscription(subscriptionId)
        return Response({"value": [provider_body(subscriptionId, namespace) for namespace in PROVIDERS]})


class ProviderGetApi(_ProviderApi):
    operation_id = "Providers_Get"

    @extend_schema(responses={200: dict, **error_responses(403, 404)})
    def get(self, request, subscriptionId, resourceProviderNamespace):
        self.check_subscription(subscriptionId)
        namespace = provider_namespace(resourceProviderNamespace)
        if namespace is None:
            raise ArmError(
                f"The resource namespace '{resourceProviderNamespace}' is invalid.",
                code="InvalidResourceNamespace",
                status=404,
            )
        return Response(provider_body(subscriptionId, namespace))
