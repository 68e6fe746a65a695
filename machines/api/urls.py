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

app_name = "machines-arm"

SUB = r"subscriptions/(?P<subscriptionId>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<resourceGroupName>[^/]+)"
MACHINES = r"/providers/microsoft\.hybridcompute/machines"
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


urlpatterns = [
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
