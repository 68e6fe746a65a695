"""``/downloads/`` for the agent: installers and the agent wheel (public, no secrets inside)."""

from django.urls import path, re_path

from onboarding.api import agent_downloads

app_name = "onboarding-agent-downloads"
urlpatterns = [
    path("downloads/install_linux_azcmagent.sh", agent_downloads.install_linux, name="install-linux"),
    path("downloads/install_windows_azcmagent.ps1", agent_downloads.install_windows, name="install-windows"),
    re_path(
        r"^downloads/(?P<filename>azcmagent-[0-9][0-9A-Za-z.+]*-py3-none-any\.whl)$",
        agent_downloads.agent_wheel,
        name="agent-wheel",
    ),
]
