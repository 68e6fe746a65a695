"""Agent plane (/his/machines/…): identity certificate and heartbeats."""

from django.urls import re_path

from machines.api import agent

app_name = "machines-agent"
urlpatterns = [
    re_path(
        r"^his/machines/(?P<vm_id>[0-9A-Fa-f-]{36})/certificate$",
        agent.MachineCertificateApi.as_view(),
        name="machine-certificate",
    ),
    re_path(r"^his/machines/(?P<vm_id>[^/]+)/heartbeat$", agent.machine_heartbeat, name="machine-heartbeat"),
]
