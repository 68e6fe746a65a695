"""The onboarding scripts (ARC-REFERENCE.md §1.2/§1.3), rendered by ONE function from Django templates.

``templates/onboarding/scripts/onboarding_linux.sh`` and ``onboarding_windows.ps1`` render with autoescape off; every
user value passes through the ``sh_quote``/``ps_quote`` filters (onboarding/quoting.py), never string replacement.
The wizard, the download and ``manage.py onboarding_script`` all call ``render_onboarding_script``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.template import engines

from identity import pki
from machines import validation
from onboarding import quoting

OS_LINUX = "linux"
OS_WINDOWS = "windows"
OS_CHOICES = [(OS_WINDOWS, "Windows"), (OS_LINUX, "Linux")]
AUTH_TOKEN = "token"  # noqa: S105 - the AUTH_TYPE value of the real scripts, not a secret
AUTH_PRINCIPAL = "principal"
CLOUD = "AzureCloud"
SECRET_PLACEHOLDER = "<ENTER SECRET HERE>"  # noqa: S105 - a placeholder the admin replaces
SCRIPT_FILENAMES = {OS_LINUX: "OnboardingScript.sh", OS_WINDOWS: "OnboardingScript.ps1"}
SCRIPT_TEMPLATES = {
    OS_LINUX: "onboarding/scripts/onboarding_linux.sh",
    OS_WINDOWS: "onboarding/scripts/onboarding_windows.ps1",
}
RUN_INSTRUCTIONS = {
    OS_LINUX: "Run it in a root shell on the server (or with sudo): bash ./OnboardingScript.sh",
    OS_WINDOWS: "Run it from an elevated 64-bit Windows PowerShell prompt: .\\OnboardingScript.ps1",
}

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_PROXY_RE = re.compile(r"^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})/?$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")


def validate_proxy_url(value: str) -> str:
    """``http(s)://host:port`` and nothing else: no user info, path, query, quotes or spaces."""
    message = "The proxy server URL must look like http://<proxyURL>:<proxyport> (http or https, a host and a port)."
    match = _PROXY_RE.match(value or "")
    if not match:
        raise ValueError(message)
    host, port = match["host"], int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError("The proxy port must be between 1 and 65535.")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise ValueError(message) from exc
    elif not all(_HOSTNAME_LABEL.match(label) for label in host.rstrip(".").split(".")) or len(host) > 253:
        raise ValueError(message)
    return value.rstrip("/")


def validate_guid(value: str, what: str) -> str:
    if not isinstance(value, str) or not _GUID_RE.match(value):
        raise ValueError(f"The {what} must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
    return str(uuid.UUID(value))


@dataclass(frozen=True)
class ScriptOptions:
    """Everything a user chooses for one script. ``validated()`` re-checks every rule before rendering."""

    os: str
    subscription_id: str
    resource_group: str
    location: str
    proxy_url: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # At scale (service principal); empty for the single-server (device code) script.
    service_principal_id: str = ""
    service_principal_secret: str = ""

    @property
    def at_scale(self) -> bool:
        return bool(self.service_principal_id)

    @property
    def auth_type(self) -> str:
        return AUTH_PRINCIPAL if self.at_scale else AUTH_TOKEN

    @property
    def filename(self) -> str:
        return SCRIPT_FILENAMES[self.os]

    def validated(self) -> ScriptOptions:
        if self.os not in SCRIPT_TEMPLATES:
            raise ValueError("The operating system must be 'linux' or 'windows'.")
        return ScriptOptions(
            os=self.os,
            subscription_id=validate_guid(self.subscription_id, "subscription id"),
            resource_group=validation.validate_resource_group_name(self.resource_group),
            location=validation.validate_location(self.location),
            proxy_url=validate_proxy_url(self.proxy_url) if self.proxy_url else "",
            tags=validation.validate_tags({k: v for k, v in self.tags.items() if v != ""}),
            service_principal_id=(
                validate_guid(self.service_principal_id, "service principal application id")
                if self.service_principal_id
                else ""
            ),
            service_principal_secret=self.service_principal_secret if self.service_principal_id else "",
        )

    def as_record(self) -> dict:
        """The options as stored on ScriptGeneration: everything but the secret."""
        return {
            "os": self.os,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "location": self.location,
            "proxy_url": self.proxy_url,
            "tags": dict(self.tags),
            "auth_type": self.auth_type,
            "service_principal_id": self.service_principal_id,
            "service_principal_secret_included": bool(self.at_scale and self.service_principal_secret),
        }


def render_onboarding_script(
    options: ScriptOptions,
    *,
    correlation_id: str,
    tenant_id: str,
    base_url: str | None = None,
    ca_fingerprint: str | None = None,
) -> str:
    """The script text for ``options``. ``base_url``/``ca_fingerprint`` default to this portal's."""
    options = options.validated()
    base_url = (base_url or settings.ARC_PUBLIC_BASE_URL).rstrip("/")
    if urlsplit(base_url).scheme != "https":
        raise ValueError("ARC_PUBLIC_BASE_URL must be an https URL: scripts never fetch code over plain http.")
    fingerprint = (ca_fingerprint or pki.ca_fingerprint_sha256()).lower()
    if not _FINGERPRINT_RE.match(fingerprint):
        raise ValueError("The CA fingerprint must be 64 hex digits (SHA-256).")
    context = {
        "options": options,
        "correlation_id": validate_guid(correlation_id, "correlation id"),
        "tenant_id": validate_guid(tenant_id, "tenant id"),
        "cloud": CLOUD,
        "auth_type": options.auth_type,
        "base_url": base_url,
        "ca_fingerprint": fingerprint,
        "tags": quoting.format_tags(options.tags) if options.tags else "",
        "sp_id": options.service_principal_id,
        "sp_secret": options.service_principal_secret or SECRET_PLACEHOLDER,
        "secret_placeholder": SECRET_PLACEHOLDER,
    }
    template = engines["django"].get_template(SCRIPT_TEMPLATES[options.os])
    return template.render(context)
