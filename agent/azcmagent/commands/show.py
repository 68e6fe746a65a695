"""``azcmagent show``: the agent's status and configuration, as text or JSON (ARC-REFERENCE.md §2.4)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from azcmagent import __version__, config, errors, service, sysinfo

OFFLINE_AFTER = timedelta(minutes=25)


def agent_status(agentconfig: dict[str, Any], state: dict[str, Any], *, now: datetime) -> str:
    """Connected while the last successful heartbeat is recent; Expired/Disconnected when the portal said so."""
    if not agentconfig.get("vmId"):
        return "Disconnected"
    if state.get("status") in ("Expired", "Disconnected") and state.get("errorCode"):
        return state["status"]
    last = state.get("lastHeartbeat")
    if not last:
        return "Disconnected"
    beat = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return "Connected" if now - beat <= OFFLINE_AFTER else "Disconnected"


def show_fields() -> list[tuple[str, str, str]]:
    paths = config.paths()
    agentconfig = config.read_json(paths.agentconfig)
    state = config.read_json(paths.state)
    local = config.local_config()
    facts = sysinfo.facts(__version__)
    detected = facts["detectedProperties"]
    connected = bool(agentconfig.get("vmId"))
    a = agentconfig if connected else {}
    portal_page = ""
    if connected:
        portal_page = f"{a.get('portalUrl', '')}/portal{a.get('resourceId', '')}"
    services_state = "running" if service.running_pid() else "stopped"
    # Extensions run in the agent service here (Azure has a service of its own for them).
    extension_service = "disabled" if local.get("extensions.enabled") is False else services_state
    return [
        ("Resource Name", "resourceName", a.get("resourceName", "")),
        ("Resource Group Name", "resourceGroup", a.get("resourceGroup", "")),
        ("Resource Namespace", "resourceNamespace", "Microsoft.HybridCompute" if connected else ""),
        ("Resource Id", "resourceId", a.get("resourceId", "")),
        ("Subscription ID", "subscriptionId", a.get("subscriptionId", "")),
        ("Tenant ID", "tenantId", a.get("tenantId", "")),
        ("VM ID", "vmId", a.get("vmId", "")),
        ("Correlation ID", "correlationId", a.get("correlationId", "")),
        ("VM UUID", "vmUuid", a.get("vmUuid", "")),
        ("Location", "location", a.get("location", "")),
        ("Cloud", "cloud", a.get("cloud", "")),
        ("Identity Key Store", "identityKeyStore", "Default"),
        ("Certificate Thumbprint", "certificateThumbprint", a.get("certificateThumbprint", "")),
        ("Agent Version", "agentVersion", __version__),
        ("Agent Logfile", "agentLogfile", str(paths.himds_log)),
        ("Agent Status", "status", agent_status(agentconfig, state, now=datetime.now(UTC))),
        ("Agent Last Heartbeat", "lastHeartbeat", state.get("lastHeartbeat", "") if connected else ""),
        ("Agent Error Code", "errorCode", state.get("errorCode", "") if connected else ""),
        ("Agent Error Details", "errorDetails", state.get("lastError", "") if connected else ""),
        ("Agent Error Timestamp", "errorTimestamp", state.get("lastErrorAt", "") if connected else ""),
        ("Using HTTPS Proxy", "httpsProxy", local.get("proxy.url", "")),
        ("Proxy Bypass List", "proxyBypass", ",".join(local.get("proxy.bypass", []))),
        ("Cloud Provider", "cloudProvider", str(detected.get("cloudprovider", "N/A"))),
        ("Manufacturer", "manufacturer", str(detected.get("manufacturer", ""))),
        ("Model", "model", str(detected.get("model", ""))),
        ("Agent Service (himds)", "himdsStatus", services_state),
        ("Extension Service (extensionservice)", "extensionServiceStatus", extension_service),
        ("Portal Page", "portalPage", portal_page),
    ]


def cmd_show(args: argparse.Namespace) -> int:
    fields = show_fields()
    if args.properties:
        wanted = {p.lower() for p in args.properties}
        fields = [f for f in fields if f[0].lower() in wanted or f[1].lower() in wanted]
    if args.json:
        print(json.dumps({key: value for _, key, value in fields}, indent=2))
    else:
        for label, _, value in fields:
            print(f"{label:<40}: {value}")
    return errors.OK
