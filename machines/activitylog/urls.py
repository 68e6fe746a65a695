"""ARM path of the activity log (Azure Monitor), case-insensitive as every ARM path."""

from arcportal.arm.views import arm_path, arm_route
from machines.activitylog.api import ActivityLogsListApi

app_name = "activitylog-arm"

urlpatterns = [
    arm_path(
        r"^subscriptions/(?P<subscriptionId>[^/]+)/providers/microsoft\.insights/eventtypes/management/values/?$",
        arm_route(
            {"GET": ActivityLogsListApi},
            path="/subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values",
        ),
        name="activity-log-list",
    ),
]
