"""``/downloads/`` (namespace "downloads"): the portal CA, the installers and the agent wheel (public, no secrets)."""

from django.urls import path, re_path

from onboarding import downloads

app_name = "downloads"
urlpatterns = [
    path("downloads/ca.pem", downloads.ca_certificate_download, name="ca-certificate"),
    path("downloads/install_linux_azcmagent.sh", downloads.install_linux, name="install-linux"),
    path("downloads/install_windows_azcmagent.ps1", downloads.install_windows, name="install-windows"),
    re_path(
        r"^downloads/(?P<filename>azcmagent-[0-9][0-9A-Za-z.+]*-py3-none-any\.whl)$",
        downloads.agent_wheel,
        name="agent-wheel",
    ),
]
