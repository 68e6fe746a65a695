"""The Machines blade's filters as the equivalent Resource Graph query (its **Open query** button). Pure.

``machine_filters_kql(cleaned)`` takes the blade's validated filter values (``MachineFilterSet`` cleaned data:
subscription, resource group, location, status, operating system, tag, name search, sort) and writes the KQL that
selects the same machines. Tag names compare exactly in KQL (``tags['env']``), as in Azure Resource Graph.
"""

from __future__ import annotations

from collections.abc import Mapping

ORDER = {
    "name": "name",
    "status": "tostring(properties.status)",
    "resource_group": "resourceGroup",
    "location": "location",
    "os": "tostring(properties.osSku)",
    "agent_version": "tostring(properties.agentVersion)",
    "last_heartbeat": "todatetime(properties.lastStatusChange)",
}
PROJECT = (
    "| project name, status = tostring(properties.status), resourceGroup, location,"
    " os = tostring(properties.osSku), agentVersion = tostring(properties.agentVersion), tags, id"
)


def kql_string(value: str) -> str:
    """A KQL string literal: single quotes, backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def machine_filters_kql(cleaned: Mapping[str, object]) -> str:
    lines = ["Resources", "| where type == 'microsoft.hybridcompute/machines'"]
    if cleaned.get("subscription"):
        lines.append(f"| where subscriptionId == {kql_string(str(cleaned['subscription']))}")
    if cleaned.get("resource_group"):
        lines.append(f"| where resourceGroup =~ {kql_string(str(cleaned['resource_group']).strip())}")
    if cleaned.get("location"):
        lines.append(f"| where location =~ {kql_string(str(cleaned['location']))}")
    if cleaned.get("status"):
        lines.append(f"| where properties.status == {kql_string(str(cleaned['status']))}")
    if cleaned.get("os"):
        lines.append(f"| where properties.osName =~ {kql_string(str(cleaned['os']))}")
    tag = cleaned.get("tag")
    if tag:
        key, value = tag
        if value is None:
            lines.append(f"| where isnotnull(tags[{kql_string(key)}])")
        else:
            lines.append(f"| where tags[{kql_string(key)}] == {kql_string(value)}")
    if cleaned.get("q"):
        lines.append(f"| where name contains {kql_string(str(cleaned['q']).strip())}")
    sort = str(cleaned.get("sort") or "name")
    expression = ORDER.get(sort.lstrip("-"), "name")
    lines.append(f"| order by {expression} {'desc' if sort.startswith('-') else 'asc'}")
    lines.append(PROJECT)
    return "\n".join(lines)
