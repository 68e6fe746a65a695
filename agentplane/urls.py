"""Agent plane (namespace "agentplane"): every ``/his/…`` endpoint. Each has its own authentication: the bearer token
for the identity certificate, the machine JWT for heartbeats, none (bounded and rate-limited) for failure reports."""

from django.urls import path, re_path

from agentplane import views, views_goalstate, views_log

app_name = "agentplane"
urlpatterns = [
    re_path(
        r"^his/machines/(?P<vm_id>[0-9A-Fa-f-]{36})/certificate$",
        views.MachineCertificateApi.as_view(),
        name="machine-certificate",
    ),
    re_path(r"^his/machines/(?P<vm_id>[^/]+)/heartbeat$", views.machine_heartbeat, name="machine-heartbeat"),
    re_path(
        r"^his/machines/(?P<vm_id>[^/]+)/goalstate$", views_goalstate.machine_goal_state, name="machine-goal-state"
    ),
    re_path(
        r"^his/machines/(?P<vm_id>[^/]+)/extensions/(?P<name>[^/]+)/status$",
        views_goalstate.machine_extension_status,
        name="machine-extension-status",
    ),
    re_path(
        r"^his/machines/(?P<vm_id>[^/]+)/runcommands/(?P<name>[^/]+)/status$",
        views_goalstate.machine_run_command_status,
        name="machine-run-command-status",
    ),
    path("his/log", views_log.onboarding_log_put, name="log"),
]
