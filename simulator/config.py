"""What a fleet simulation is asked to do (``FleetConfig``), each simulated machine's state, and the facts it reports.

No Django: the simulator speaks to the portal over HTTPS only (``simulator.fleet``)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azcmagent import __version__ as AGENT_VERSION

TOKEN_RENEW_BEFORE_SECONDS = 300
DEFAULT_GRACE_SECONDS = 30.0
SIM_DOMAIN = "sim.arcportal.test"
USER_AGENT = "azcmagent (ArcPortal fleet simulator)"
OPERATING_SYSTEMS = (
    ("linux", "5.15.0-122-generic", "Ubuntu 22.04.5 LTS"),
    ("linux", "6.8.0-45-generic", "Ubuntu 24.04.1 LTS"),
    ("linux", "5.14.0-427.el9.x86_64", "Red Hat Enterprise Linux 9.4 (Plow)"),
    ("linux", "6.1.0-25-amd64", "Debian GNU/Linux 12 (bookworm)"),
    ("windows", "10.0.20348", "Windows Server 2022 Datacenter"),
    ("windows", "10.0.17763", "Windows Server 2019 Datacenter"),
)


@dataclass(frozen=True)
class FleetConfig:
    portal_url: str
    tenant_id: str
    subscription_id: str
    resource_group: str
    client_id: str
    client_secret: str
    machines: int
    ca_file: str | None = None
    offline_fraction: float = 0.0
    duration: float = 600.0
    interval: float | None = None  # None: what the portal answers (nextHeartbeatSeconds)
    concurrency: int = 20
    location: str = "westeurope"
    name_prefix: str = ""  # default: "sim-" + 6 random hex digits, so runs never collide on names
    tags: Mapping[str, str] = field(default_factory=dict)
    key_workers: int | None = None  # processes making RSA keys; 0 = in a thread of this process
    key_dir: str | None = None  # a key cache (fill_key_cache): machine i uses its key-i.pem instead of a new key
    # None: ``duration`` counts from the start, onboarding included. A number: onboard the fleet first (no machine
    # starts onboarding later than this many seconds after the start), then run the ``duration`` window.
    onboarding_timeout: float | None = None
    grace: float = DEFAULT_GRACE_SECONDS
    seed: int | None = None

    def validate(self) -> None:
        if self.machines < 1:
            raise ValueError("machines must be at least 1")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError("offline_fraction must be between 0 and 1")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.interval is not None and self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.onboarding_timeout is not None and self.onboarding_timeout <= 0:
            raise ValueError("onboarding_timeout must be positive")
        if not self.portal_url.startswith("https://"):
            raise ValueError(f"the portal URL must be https:// (got {self.portal_url})")


@dataclass
class SimulatedMachine:
    index: int
    name: str
    stays_online: bool
    vm_id: str = ""
    vm_uuid: str = ""
    thumbprint: str = ""
    onboarded: bool = False
    onboarded_after: float = 0.0  # seconds from the start of the run until it had its certificate
    failure: str = ""
    heartbeats_sent: int = 0
    heartbeats_accepted: int = 0
    window_heartbeats_accepted: int = 0  # of those, sent in the timed window (``onboarding_timeout``)
    stopped_by_portal: str = ""  # "410 MachineDeleted" / "403 Expired"


def offline_indexes(machines: int, fraction: float, *, rng: random.Random) -> set[int]:
    """Which machines stop heartbeating after onboarding: ``round(machines × fraction)`` of them, spread at random."""
    count = min(machines, max(0, math.floor(machines * fraction + 0.5)))
    return set(rng.sample(range(machines), count))


def machine_facts(name: str, *, rng: random.Random) -> dict[str, Any]:
    """Simulated OS facts in the shape ``azcmagent.sysinfo.facts`` sends (registration and every heartbeat)."""
    os_name, os_version, os_sku = rng.choice(OPERATING_SYSTEMS)
    fqdn = f"{name}.{SIM_DOMAIN}"
    return {
        "agentVersion": AGENT_VERSION,
        "osName": os_name,
        "osType": os_name,
        "osVersion": os_version,
        "osSku": os_sku,
        "computerName": name,
        "fqdn": fqdn,
        "machineFqdn": fqdn,
        "dnsFqdn": fqdn,
        "domainName": SIM_DOMAIN,
        "detectedProperties": {
            "cloudprovider": "N/A",
            "manufacturer": "ArcPortal",
            "model": "Simulated Machine",
            "processorCount": str(rng.choice((2, 4, 8, 16))),
            "totalPhysicalMemoryInBytes": str(rng.choice((4, 8, 16, 32, 64)) * 1024**3),
            "mssqldiscovered": "false",
        },
    }


def registration_body(
    *, location: str, tags: Mapping[str, str], vm_id: str, vm_uuid: str, public_key_b64: str, facts: Mapping[str, Any]
) -> dict[str, Any]:
    """The ARM PUT body of ``azcmagent connect`` (``cli.cmd_connect``)."""
    properties = {
        "vmId": vm_id,
        "vmUuid": vm_uuid,
        "clientPublicKey": public_key_b64,
        "osProfile": {"computerName": facts["computerName"]},
        **{k: v for k, v in facts.items() if k not in ("fqdn", "computerName")},
    }
    return {"location": location, "tags": dict(tags), "identity": {"type": "SystemAssigned"}, "properties": properties}
