"""ARM-plane paths (API-CONTRACT.md §3–§6), spelled out, matched case-insensitively (``re.IGNORECASE``, not an
inline ``(?i)``, which would break ``reverse()`` project-wide), no trailing slash required, no redirect.

Each path dispatches by method to one APIView per ARM operation (``arcportal.arm.views.arm_route``); other methods
answer 405 with an ARM body. Path segments arrive percent-decoded. Also the OpenAPI schema and its Swagger UI.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arcportal.arm.views import arm_path, arm_route
from machines.api import views
from machines.api.graph import ResourcesApi
from machines.api.views import authorization as authz_views
from machines.api.views.providers import ProviderGetApi, ProviderListApi
from machines.api.views.resources import ResourceListApi, ResourceListByResourceGroupApi

app_name = "machines-arm"

SUB = r"subscriptions/(?P<subscriptionId>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<resourceGroupName>[^/]+)"
# `/+`: the generic-resource calls (az resource show/tag/delete) send an empty parent path, `…HybridCompute//machines`.
MACHINES = r"/providers/microsoft\.hybridcompute/+machines"
MACHINE = RG + MACHINES + r"/(?P<machineName>[^/]+)"
EXTENSION = MACHINE + r"/extensions/(?P<extensionName>[^/]+)"
RUN_COMMAND = MACHINE + r"/runcommands/(?P<runCommandName>[^/]+)"
OPERATIONS = SUB + r"/providers/microsoft\.hybridcompute/locations/(?P<location>[^/]+)"

T_SUB = "/subscriptions/{subscriptionId}"
T_RG = T_SUB + "/resourceGroups/{resourceGroupName}"
T_MACHINES = "/providers/Microsoft.HybridCompute/machines"
T_MACHINE = T_RG + T_MACHINES + "/{machineName}"


def arm(regex: str, template: str, name: str, views_by_method):
    return arm_path(rf"^{regex}/?$", arm_route(views_by_method, path=template), name=name)


def authorization_routes():
    """``Microsoft.Authorization`` role assignments (subscription, group, machine scope) and role definitions (also at
    the root). ``/?``: the SDK sends ``//subscriptions/…`` when a scope is given with its leading slash."""
    authz = r"/providers/microsoft\.authorization"
    t_authz = "/providers/Microsoft.Authorization"
    assignments = {"GET": authz_views.RoleAssignmentListForScopeApi}
    assignment = {
        "GET": authz_views.RoleAssignmentGetApi,
        "PUT": authz_views.RoleAssignmentCreateApi,
        "DELETE": authz_views.RoleAssignmentDeleteApi,
    }
    routes = []

    def at(views_by_method, suffix):  # one operationId per path in the schema: RoleAssignments_Get_ResourceGroup …
        if not suffix:
            return views_by_method
        return {
            method: type(f"{cls.__name__}{suffix}", (cls,), {"operation_id": f"{cls.operation_id}_{suffix}"})
            for method, cls in views_by_method.items()
        }

    for key, regex, template, suffix in (
        ("subscription", SUB, T_SUB, ""),
        ("resource-group", RG, T_RG, "ResourceGroup"),
        ("machine", MACHINE, T_MACHINE, "Machine"),
    ):
        routes += [
            arm(
                f"/?{regex}{authz}/roleassignments",
                f"{template}{t_authz}/roleAssignments",
                f"role-assignment-list-{key}",
                at(assignments, suffix),
            ),
            arm(
                f"/?{regex}{authz}/roleassignments/(?P<name>[^/]+)",
                f"{template}{t_authz}/roleAssignments/{{name}}",
                f"role-assignment-detail-{key}",
                at(assignment, suffix),
            ),
        ]
    for key, regex, template, suffix in (
        ("root", "", "", ""),
        ("subscription", f"/?{SUB}", T_SUB, "Subscription"),
        ("resource-group", f"/?{RG}", T_RG, "ResourceGroup"),
    ):
        prefix = f"{regex}{authz}" if regex else f"/?{authz[1:]}"
        routes += [
            arm(
                f"{prefix}/roledefinitions",
                f"{template}{t_authz}/roleDefinitions",
                f"role-definition-list-{key}",
                at({"GET": authz_views.RoleDefinitionListApi}, suffix),
            ),
            arm(
                f"{prefix}/roledefinitions/(?P<roleDefinitionId>[^/]+)",
                f"{template}{t_authz}/roleDefinitions/{{roleDefinitionId}}",
                f"role-definition-detail-{key}",
                at({"GET": authz_views.RoleDefinitionGetApi}, suffix),
            ),
        ]
    return routes


urlpatterns = [
    *authorization_routes(),
    arm("subscriptions", "/subscriptions", "subscription-list", {"GET": views.SubscriptionListApi}),
    arm(SUB, T_SUB, "subscription-detail", {"GET": views.SubscriptionGetApi}),
    arm(
        SUB + r"/resourcegroups", T_SUB + "/resourcegroups", "resource-group-list", {"GET": views.ResourceGroupListApi}
    ),
    arm(
        RG,
        T_RG,
        "resource-group-detail",
        {
            "GET": views.ResourceGroupGetApi,
            "HEAD": views.ResourceGroupCheckExistenceApi,
            "PUT": views.ResourceGroupCreateOrUpdateApi,
            "PATCH": views.ResourceGroupUpdateApi,
            "DELETE": views.ResourceGroupDeleteApi,
        },
    ),
    # Generic resources and resource providers (az resource list/show/tag/delete; docs/cli.md).
    arm(SUB + r"/resources", T_SUB + "/resources", "resource-list", {"GET": ResourceListApi}),
    arm(RG + r"/resources", T_RG + "/resources", "resource-list-by-group", {"GET": ResourceListByResourceGroupApi}),
    arm(SUB + r"/providers", T_SUB + "/providers", "provider-list", {"GET": ProviderListApi}),
    arm(
        SUB + r"/providers/(?P<resourceProviderNamespace>[^/]+)",
        T_SUB + "/providers/{resourceProviderNamespace}",
        "provider-detail",
        {"GET": ProviderGetApi},
    ),
    arm(
        SUB + MACHINES,
        T_SUB + T_MACHINES,
        "machine-list-by-subscription",
        {"GET": views.MachineListBySubscriptionApi},
    ),
    arm(RG + MACHINES, T_RG + T_MACHINES, "machine-list", {"GET": views.MachineListByResourceGroupApi}),
    arm(
        MACHINE,
        T_MACHINE,
        "machine-detail",
        {
            "GET": views.MachineGetApi,
            "PUT": views.MachineCreateOrUpdateApi,
            "PATCH": views.MachineUpdateApi,
            "DELETE": views.MachineDeleteApi,
        },
    ),
    arm(MACHINE + r"/extensions", T_MACHINE + "/extensions", "extension-list", {"GET": views.MachineExtensionListApi}),
    arm(
        EXTENSION,
        T_MACHINE + "/extensions/{extensionName}",
        "extension-detail",
        {
            "GET": views.MachineExtensionGetApi,
            "PUT": views.MachineExtensionCreateOrUpdateApi,
            "PATCH": views.MachineExtensionUpdateApi,
            "DELETE": views.MachineExtensionDeleteApi,
        },
    ),
    arm(
        MACHINE + r"/runcommands",
        T_MACHINE + "/runCommands",
        "run-command-list",
        {"GET": views.MachineRunCommandListApi},
    ),
    arm(
        RUN_COMMAND,
        T_MACHINE + "/runCommands/{runCommandName}",
        "run-command-detail",
        {
            "GET": views.MachineRunCommandGetApi,
            "PUT": views.MachineRunCommandCreateOrUpdateApi,
            "DELETE": views.MachineRunCommandDeleteApi,
        },
    ),
    arm(
        OPERATIONS + r"/operationstatus/(?P<operationId>[^/]+)",
        T_SUB + "/providers/Microsoft.HybridCompute/locations/{location}/operationStatus/{operationId}",
        "operation-status",
        {"GET": views.OperationStatusGetApi},
    ),
    arm(
        OPERATIONS + r"/operationresults/(?P<operationId>[^/]+)",
        T_SUB + "/providers/Microsoft.HybridCompute/locations/{location}/operationResults/{operationId}",
        "operation-result",
        {"GET": views.OperationResultGetApi},
    ),
    arm(
        r"providers/microsoft\.resourcegraph/resources",
        "/providers/Microsoft.ResourceGraph/resources",
        "resource-graph-resources",
        {"POST": ResourcesApi},
    ),
    # OpenAPI 3 of the ARM plane, and Swagger UI with its assets served locally (drf-spectacular-sidecar).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="machines-arm:schema"), name="docs"),
]
