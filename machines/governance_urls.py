"""Portal pages of the activity log and locks at subscription, resource-group and machine scope (contracts.md URLs);
``machines/urls.py`` adds them to its patterns, in the ``machines`` namespace."""

from django.urls import path

from machines.activitylog.views import activity_log
from machines.locks.views import locks_page

SUB = "portal/subscriptions/<str:subscription_id>"
RG = SUB + "/resourceGroups/<str:resource_group>"
MACHINE = RG + "/providers/Microsoft.HybridCompute/machines/<str:name>"

urlpatterns = [
    path(f"{SUB}/activitylog", activity_log, name="subscription-activity"),
    path(f"{RG}/activitylog", activity_log, name="resource-group-activity"),
    path(f"{MACHINE}/activitylog", activity_log, name="machine-activity"),
    path(f"{SUB}/locks", locks_page, name="subscription-locks"),
    path(f"{RG}/locks", locks_page, name="resource-group-locks"),
    path(f"{MACHINE}/locks", locks_page, name="machine-locks"),
]
