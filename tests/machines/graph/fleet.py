"""A seeded fleet for the Resource Graph tests: two subscriptions, three resource groups, machines in every status
with tags, extensions and extra properties (``seed_fleet``). Expected rows are computed from ``Fleet`` in each
test, never by the engine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from machines.models import Extension, Machine, MachineTag, ResourceGroup, Subscription
from machines.status import StatusThresholds, derive_status


@dataclass
class Fleet:
    now: object
    subscriptions: list[Subscription]
    groups: dict[str, ResourceGroup]
    machines: dict[str, Machine]
    extensions: dict[str, Extension]
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def status(self, machine: Machine) -> str:
        return derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=self.now, thresholds=StatusThresholds())

    def machine_id(self, machine: Machine) -> str:
        from arcportal.arm import ids

        group = machine.resource_group
        return ids.machine_id(str(group.subscription.subscription_id), group.name, machine.name)

    def extension_id(self, extension: Extension) -> str:
        return f"{self.machine_id(extension.machine)}/extensions/{extension.name}"

    def resources(self) -> list[dict]:
        """Every Resources row as the test expects it, computed from the seed (never by the engine)."""
        rows = []
        for m in self.machines.values():
            group = m.resource_group
            rows.append({
                "id": self.machine_id(m), "name": m.name, "type": "microsoft.hybridcompute/machines",
                "location": m.location, "resourceGroup": group.name.lower(), "kind": m.kind,
                "subscriptionId": str(group.subscription.subscription_id), "status": self.status(m),
                "osName": m.os_name, "domainName": m.domain_name, "agentVersion": m.agent_version,
                "computerName": m.computer_name, "tags": dict(self.tags.get(m.name, {})),
                "heartbeat": m.last_heartbeat_at,
            })  # fmt: skip
        for e in self.extensions.values():
            group = e.machine.resource_group
            rows.append({
                "id": self.extension_id(e), "name": e.name, "type": "microsoft.hybridcompute/machines/extensions",
                "location": e.location, "resourceGroup": group.name.lower(), "kind": "",
                "subscriptionId": str(group.subscription.subscription_id), "machine": e.machine.name,
                "publisher": e.publisher, "tags": dict(e.tags),
            })  # fmt: skip
        return rows

    def machine_rows(self) -> list[dict]:
        return [r for r in self.resources() if r["type"] == "microsoft.hybridcompute/machines"]

    def containers(self) -> list[dict]:
        rows = [
            {"id": f"/subscriptions/{s.subscription_id}", "name": s.display_name,
             "type": "microsoft.resources/subscriptions", "subscriptionId": str(s.subscription_id), "location": "",
             "resourceGroup": ""}
            for s in self.subscriptions
        ]  # fmt: skip
        for g in self.groups.values():
            rows.append({
                "id": f"/subscriptions/{g.subscription.subscription_id}/resourceGroups/{g.name}", "name": g.name,
                "type": "microsoft.resources/subscriptions/resourcegroups", "location": g.location,
                "subscriptionId": str(g.subscription.subscription_id), "resourceGroup": g.name.lower(),
            })  # fmt: skip
        return rows


MACHINES = [
    # name, group, os, domain, agent, heartbeat age (None: never), computer name, kind
    ("web-01", "rg-web", "linux", "contoso.local", "1.50.0", timedelta(minutes=1), "web-01.contoso.local", ""),
    ("web-02", "rg-web", "linux", "contoso.local", "1.50.0", timedelta(minutes=20), "web-02.contoso.local", ""),
    ("Web-03", "rg-web", "windows", "fabrikam.com", "1.49.2", timedelta(hours=2), "WEB03", "AVS"),
    ("db-01", "RG-Data", "windows", "fabrikam.com", "1.48.0", timedelta(days=10), "DB01", ""),
    ("db-02", "RG-Data", "linux", "", "1.50.0", timedelta(days=60), "", ""),
    ("new-01", "RG-Data", "", "", "", None, "", ""),
    ("edge-01", "rg-edge", "linux", "contoso.local", "1.47.0", timedelta(days=3), "edge-01", "HCI"),
    ("edge-02", "rg-edge", "windows", "contoso.local", "1.50.0", timedelta(seconds=30), "edge-02", ""),
]
TAGS = {
    "web-01": {"env": "prod", "team": "web"},
    "web-02": {"env": "dev"},
    "Web-03": {"env": "prod", "Owner": "Ada Lovelace"},
    "db-01": {"env": "prod", "tier": "data"},
    "edge-01": {"site": "lyon"},
}
EXTENSIONS = [
    # machine, name, publisher, type, version, settings, instance view, auto upgrade
    ("web-01", "AzureMonitorLinuxAgent", "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.30", {}, {}, True),
    (
        "web-01",
        "CustomScript",
        "Microsoft.Azure.Extensions",
        "CustomScript",
        "2.1",
        {"commandToExecute": "echo"},
        {"status": {"code": "ProvisioningState/succeeded", "level": "Info"}},
        None,
    ),
    ("web-02", "AzureMonitorLinuxAgent", "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.29", {}, {}, False),
    ("db-01", "MDE.Windows", "Microsoft.Azure.AzureDefenderForServers", "MDE.Windows", "1.0", {}, {}, None),
    (
        "edge-02",
        "AzureMonitorWindowsAgent",
        "Microsoft.Azure.Monitor",
        "AzureMonitorWindowsAgent",
        "1.22",
        {},
        {},
        True,
    ),
]


def seed_fleet(*, subscription: Subscription, now) -> Fleet:
    second = Subscription.objects.create(
        subscription_id=uuid.UUID("22222222-3333-4444-5555-666666666666"),
        tenant=subscription.tenant,
        display_name="Edge subscription",
    )
    groups = {
        "rg-web": ResourceGroup.objects.create(subscription=subscription, name="rg-web", location="westeurope",
                                               tags={"env": "prod", "cost": "42"}),
        "RG-Data": ResourceGroup.objects.create(subscription=subscription, name="RG-Data", location="eastus",
                                                managed_by="/subscriptions/x/managedBy"),
        "rg-edge": ResourceGroup.objects.create(subscription=second, name="rg-edge", location="francecentral"),
    }  # fmt: skip
    machines = {}
    for index, (name, group, os_name, domain, agent, age, computer, kind) in enumerate(MACHINES):
        machines[name] = Machine.objects.create(
            resource_group=groups[group],
            name=name,
            location=groups[group].location,
            kind=kind,
            vm_id=uuid.UUID(int=index + 1) if age is not None else None,
            os_name=os_name,
            os_type=os_name,
            os_sku={"linux": "Ubuntu 22.04", "windows": "Windows Server 2022"}.get(os_name, ""),
            domain_name=domain,
            agent_version=agent,
            computer_name=computer,
            last_heartbeat_at=None if age is None else now - age,
            identity_type="" if name == "db-02" else "SystemAssigned",
            detected_properties={"cloudprovider": "N/A", "cores": str(2 + index)} if age is not None else {},
            extra_properties={"locationData": {"name": "Paris", "city": None}} if name == "web-01" else {},
            error_details=[{"code": "Warn", "message": "disk"}] if name == "db-01" else [],
        )
        # Registered a month before ``now`` (not at the real clock's time): lastStatusChange of new-01 is this.
        Machine.objects.filter(pk=machines[name].pk).update(created_at=now - timedelta(days=30))
        machines[name].refresh_from_db()
        for key, value in TAGS.get(name, {}).items():
            MachineTag.objects.create(machine=machines[name], key=key, value=value)
    extensions = {}
    for machine, name, publisher, type_, version, settings_, view, auto in EXTENSIONS:
        extensions[f"{machine}/{name}"] = Extension.objects.create(
            machine=machines[machine],
            name=name,
            location=machines[machine].location,
            publisher=publisher,
            type=type_,
            type_handler_version=version,
            settings=settings_,
            instance_view=view,
            auto_upgrade_minor_version=auto,
            tags={"owner": "ops"} if name == "CustomScript" else {},
        )
    return Fleet(now=now, subscriptions=[subscription, second], groups=groups, machines=machines,
                 extensions=extensions, tags=TAGS)  # fmt: skip
