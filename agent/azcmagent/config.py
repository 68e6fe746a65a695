"""Local files of the agent under ``AZCMAGENT_HOME`` (default ``/var/opt/azcmagent``, ARC-REFERENCE.md §3).

* ``agentconfig.json`` — what ``connect`` established (tenant, subscription, resource group, name, location, vmId,
  vmUuid, correlation id, cloud, portal URL, CA file, certificate thumbprint);
* ``localconfig.json`` — ``azcmagent config`` settings (flat dotted keys);
* ``certs/machine.key`` (0600) and ``certs/machine.pem`` — the machine identity; ``certs/previous-machine.key``
  (0600) — the key of a machine left registered by ``disconnect --force-local-only``, kept so that ``connect``
  can prove it holds that key and re-attach the machine;
* ``state.json`` — the service's last heartbeat; ``himds.pid``; ``log/himds.log``, ``log/azcmagent.log``;
* ``extensions/state.json`` — what the extension manager applied (sequence per extension and run command, the
  operation in flight, reports not delivered yet); ``extensions/<Publisher.Type>/…`` the handlers' files;
  ``runcommands/<name>/<sequence>/`` the run commands' scripts and output;
* HIMDS challenge files in ``himds.tokensDir`` (default ``/var/opt/azcmagent/tokens``, where azure-identity looks).

The installer records where the portal is in ``$AZCMAGENT_PREFIX/etc/install.json`` (``AZCMAGENT_INSTALL_CONFIG``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOME = "/var/opt/azcmagent"
# azure-identity and MSAL read HIMDS challenge files only from here, whatever AZCMAGENT_HOME is (docs/extensions.md).
DEFAULT_TOKENS_DIR = (
    os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "AzureConnectedMachineAgent", "Tokens")
    if os.name == "nt"
    else "/var/opt/azcmagent/tokens"
)

LOCAL_DEFAULTS: dict[str, Any] = {
    "incomingconnections.enabled": True,
    "incomingconnections.ports": [],
    "connection.type": "default",
    "proxy.url": "",
    "proxy.bypass": [],
    "extensions.allowlist": [],
    "extensions.blocklist": [],
    "guestconfiguration.enabled": True,
    "extensions.enabled": True,
    "config.mode": "full",
    "guestconfiguration.agent.cpulimit": 5,
    "extensions.agent.cpulimit": 5,
    # ArcPortal's own settings (not in Azure's agent): how long an extension operation may run, and HIMDS.
    "extensions.timeoutSeconds": 5400,
    "himds.port": 40342,
    "himds.tokensDir": DEFAULT_TOKENS_DIR,
}
LIST_KEYS = {"incomingconnections.ports", "proxy.bypass", "extensions.allowlist", "extensions.blocklist"}
BOOL_KEYS = {"incomingconnections.enabled", "guestconfiguration.enabled", "extensions.enabled"}
INT_KEYS = {"guestconfiguration.agent.cpulimit", "extensions.agent.cpulimit", "extensions.timeoutSeconds", "himds.port"}
INT_RANGES = {"extensions.timeoutSeconds": (1, 7 * 24 * 3600), "himds.port": (1, 65535)}
CHOICES = {"config.mode": ("full", "monitor"), "connection.type": ("default", "direct", "gateway")}
PROXY_BYPASS_VALUES = ("AAD", "ARM", "AMA", "Arc", "ArcData")
# Monitor mode locks these (ARC-REFERENCE.md §3.3).
LOCKED_IN_MONITOR_MODE = {"extensions.allowlist", "extensions.blocklist", "extensions.enabled"}


def home() -> Path:
    """``AZCMAGENT_HOME``, else ``/var/opt/azcmagent`` (Linux) or ``%ProgramData%\\AzureConnectedMachineAgent``."""
    if os.environ.get("AZCMAGENT_HOME"):
        return Path(os.environ["AZCMAGENT_HOME"])
    if os.name == "nt":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "AzureConnectedMachineAgent"
    return Path(DEFAULT_HOME)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def agentconfig(self) -> Path:
        return self.root / "agentconfig.json"

    @property
    def localconfig(self) -> Path:
        return self.root / "localconfig.json"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def key(self) -> Path:
        return self.certs / "machine.key"

    @property
    def previous_key(self) -> Path:
        return self.certs / "previous-machine.key"

    @property
    def certificate(self) -> Path:
        return self.certs / "machine.pem"

    @property
    def portal_ca(self) -> Path:
        return self.certs / "portal-ca.pem"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def extensions(self) -> Path:
        return self.root / "extensions"

    @property
    def extensions_state(self) -> Path:
        return self.extensions / "state.json"

    @property
    def runcommands(self) -> Path:
        return self.root / "runcommands"

    @property
    def pid(self) -> Path:
        return self.root / "himds.pid"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def himds_log(self) -> Path:
        return self.logs / "himds.log"

    @property
    def cli_log(self) -> Path:
        return self.logs / "azcmagent.log"


def paths() -> Paths:
    return Paths(home())


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any], *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write a public text file (0644) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def install_config() -> dict[str, Any]:
    """What the installer recorded: ``{"portalUrl": …, "caFile": …, "proxy": …}``."""
    explicit = os.environ.get("AZCMAGENT_INSTALL_CONFIG")
    if explicit:
        return read_json(Path(explicit))
    prefix = os.environ.get("AZCMAGENT_PREFIX")
    if prefix:
        return read_json(Path(prefix) / "etc" / "install.json")
    return read_json(Path("/opt/azcmagent/etc/install.json"))


def local_config() -> dict[str, Any]:
    values = dict(LOCAL_DEFAULTS)
    values.update(read_json(paths().localconfig))
    return values


def coerce_local_value(key: str, raw: str) -> Any:
    """Parse a ``config set`` value for ``key``; raises ValueError with a message for a bad one."""
    if key not in LOCAL_DEFAULTS:
        raise ValueError(f"Unknown configuration property {key!r}. Known: {', '.join(sorted(LOCAL_DEFAULTS))}.")
    if key in LIST_KEYS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if key == "proxy.bypass":
            wrong = [item for item in items if item not in PROXY_BYPASS_VALUES]
            if wrong:
                raise ValueError(f"proxy.bypass accepts {', '.join(PROXY_BYPASS_VALUES)}; not {', '.join(wrong)}.")
        if key.startswith("extensions.") and any("/" not in item for item in items):
            raise ValueError(f"{key} entries are Publisher/Type, e.g. Microsoft.Compute/CustomScriptExtension.")
        return items
    if key in BOOL_KEYS:
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"{key} is true or false.")
        return raw.lower() == "true"
    if key in INT_KEYS:
        try:
            number = int(raw)
        except ValueError as exc:
            raise ValueError(f"{key} is a whole number.") from exc
        low, high = INT_RANGES.get(key, (-(2**63), 2**63))
        if not low <= number <= high:
            raise ValueError(f"{key} is a whole number from {low} to {high}.")
        return number
    if key in CHOICES and raw not in CHOICES[key]:
        raise ValueError(f"{key} is one of {', '.join(CHOICES[key])}.")
    if key == "himds.tokensDir" and not os.path.isabs(raw):
        raise ValueError("himds.tokensDir must be an absolute path, e.g. /var/opt/azcmagent/tokens.")
    if key == "proxy.url" and raw and not raw.startswith(("http://", "https://")):
        raise ValueError("proxy.url must be an http:// or https:// URL, e.g. http://proxy.contoso.corp:8080.")
    return raw
