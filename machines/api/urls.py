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

app_name = "machines-arm"

SUB = r"subscriptions/(?P<subscriptionId>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<resourceGroupName>[^/]+)"
MACHINES = r"/providers/microsoft\.hybridcompute/machines"
MACHINE = RG + MACHINES + r"/(?P<machineName>[^/]+)"
EXTENSION = MACHINE + r"/extensions/(?P<extensionName>[^/]+)"

# A role-assignment scope: a subscription, a resource group or a machine (the SDK sends its slashes unquoted).
SCOPE = r"/?(?P<scope>subscriptions/[^/]+(?:/resourcegroups/[^/]+(?:" + MACHINES + r"/[^/]+)?)?)"
AUTHZ = r"/providers/microsoft\.authorization"
ASSIGNMENT_NAME = r"/roleassignments/(?P<name>[^/]+)"

T_SUB = "/subscriptions/{subscriptionId}"
T_AUTHZ = "/{scope}/providers/Microsoft.Authorization"
T_RG = T_SUB + "/resourceGroups/{resourceGroupName}"
T_MACHINES = "/providers/Microsoft.HybridCompute/machines"
T_MACHINE = T_RG + T_MACHINES + "/{machineName}"


def arm(regex: str, template: str, name: str, views_by_method):
    return arm_path(rf"^{regex}/?$", arm_route(views_by_method, path=template), name=name)


urlpatterns = [
    arm(
        SUB + AUTHZ + r"/roleassignments",
        T_SUB + "/providers/Microsoft.Authorization/roleAssignments",
        "role-assignment-list-by-subscription",
        {"GET": authz_views.RoleAssignmentListForSubscriptionApi},
    ),
    arm(
        SCOPE + AUTHZ + r"/roleassignments",
        T_AUTHZ + "/roleAssignments",
        "role-assignment-list",
        {"GET": authz_views.RoleAssignmentListForScopeApi},
    ),
    arm(
        SCOPE + AUTHZ + ASSIGNMENT_NAME,
        T_AUTHZ + "/roleAssignments/{name}",
        "role-assignment-detail",
        {
            "GET": authz_views.RoleAssignmentGetApi,
            "PUT": authz_views.RoleAssignmentCreateApi,
            "DELETE": authz_views.RoleAssignmentDeleteApi,
        },
    ),
    arm(
        r"/?(?:(?P<scope>subscriptions/[^/]+(?:/resourcegroups/[^/]+)?)/)?providers/microsoft\.authorization/roledefinitions",
        T_AUTHZ + "/roleDefinitions",
        "role-definition-list",
        {"GET": authz_views.RoleDefinitionListApi},
    ),
    arm(
        r"/?(?:(?P<scope>subscriptions/[^/]+(?:/resourcegroups/[^/]+)?)/)?providers/microsoft\.authorization"
        r"/roledefinitions/(?P<roleDefinitionId>[^/]+)",
        T_AUTHZ + "/roleDefinitions/{roleDefinitionId}",
        "role-definition-detail",
        {"GET": authz_views.RoleDefinitionGetApi},
    ),
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
        r"providers/microsoft\.resourcegraph/resources",
        "/providers/Microsoft.ResourceGraph/resources",
        "resource-graph-resources",
        {"POST": ResourcesApi},
    ),
    # OpenAPI 3 of the ARM plane, and Swagger UI with its assets served locally (drf-spectacular-sidecar).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="machines-arm:schema"), name="docs"),
]
