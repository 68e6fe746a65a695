"""ARM paths of ``Microsoft.Authorization/locks`` (case-insensitive, as machines.api.urls). The scope may arrive as
``//subscriptions/…`` (``…_by_scope`` percent-encodes its slashes) and a machine as
``…/Microsoft.HybridCompute//machines/…`` (``…_at_resource_level`` with an empty parent path)."""

from arcportal.arm.views import arm_path, arm_route
from machines.locks import api

app_name = "locks-arm"

SCOPE = (
    r"/*subscriptions/(?P<subscriptionId>[^/]+)"
    r"(?:/resourcegroups/(?P<resourceGroupName>[^/]+)"
    r"(?:/providers/microsoft\.hybridcompute/+machines/(?P<machineName>[^/]+))?)?"
    r"/providers/microsoft\.authorization/locks"
)
T_SCOPE = "/{scope}/providers/Microsoft.Authorization/locks"

urlpatterns = [
    arm_path(rf"^{SCOPE}/?$", arm_route({"GET": api.ManagementLocksListApi}, path=T_SCOPE), name="lock-list"),
    arm_path(
        rf"^{SCOPE}/(?P<lockName>[^/]+)/?$",
        arm_route(
            {
                "GET": api.ManagementLocksGetApi,
                "PUT": api.ManagementLocksCreateOrUpdateApi,
                "DELETE": api.ManagementLocksDeleteApi,
            },
            path=T_SCOPE + "/{lockName}",
        ),
        name="lock-detail",
    ),
]
