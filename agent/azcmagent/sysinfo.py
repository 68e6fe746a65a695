"""Facts about this host: hardware identity (vmUuid), OS, names, detected properties."""

from __future__ import annotations

import os
import platform
import re
import socket
import uuid
from pathlib import Path

NAME_RE = re.compile(r"^[a-zA-Z0-9-_.]{1,54}$")


def vm_uuid() -> str:
    """``AZCMAGENT_VM_UUID``, else the SMBIOS product UUID, else /etc/machine-id as a GUID (stable per host)."""
    explicit = os.environ.get("AZCMAGENT_VM_UUID", "").strip()
    if explicit:
        return explicit.upper()
    for path in ("/sys/class/dmi/id/product_uuid",):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value:
            return value.upper()
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if re.fullmatch(r"[0-9a-fA-F]{32}", value):
            return str(uuid.UUID(value)).upper()
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, socket.getfqdn())).upper()


def os_release() -> dict[str, str]:
    values: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"')
        break
    return values


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def memory_bytes() -> int:
    text = _read("/proc/meminfo")
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def host_name() -> str:
    return socket.gethostname().split(".")[0]


def default_resource_name() -> str:
    return host_name()


def valid_resource_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and not name.endswith(("-", "_"))


def facts(agent_version: str) -> dict[str, object]:
    """The OS facts sent with the registration and every heartbeat."""
    system = platform.system().lower()
    release = os_release()
    fqdn = socket.getfqdn()
    domain = fqdn.split(".", 1)[1] if "." in fqdn else ""
    manufacturer = _read("/sys/class/dmi/id/sys_vendor") or "Unknown"
    model = _read("/sys/class/dmi/id/product_name") or "Unknown"
    return {
        "agentVersion": agent_version,
        "osName": "windows" if system == "windows" else "linux",
        "osType": "windows" if system == "windows" else "linux",
        "osVersion": platform.release(),
        "osSku": release.get("PRETTY_NAME") or f"{platform.system()} {platform.release()}",
        "computerName": host_name(),
        "fqdn": fqdn,
        "machineFqdn": fqdn,
        "dnsFqdn": fqdn,
        "domainName": domain,
        "detectedProperties": {
            "cloudprovider": "N/A",
            "manufacturer": manufacturer,
            "model": model,
            "processorCount": str(os.cpu_count() or 0),
            "totalPhysicalMemoryInBytes": str(memory_bytes()),
            "mssqldiscovered": "false",
        },
    }
