"""What a heartbeat body may tell about its machine: agent version, OS facts, names, detected properties.

``machine_heartbeat_facts`` turns the body into model fields (cut to their column sizes, unknown keys ignored);
``FACT_FIELDS`` are the fields a buffered heartbeat may carry; ``FACT_LIMITS`` bound the text of a body
(``arcportal.textguard``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arcportal import textguard
from machines.models import Machine

AGENT_HEARTBEAT_FACTS = {
    # heartbeat body key → model field
    "agentVersion": "agent_version",
    "osName": "os_name",
    "osType": "os_type",
    "osVersion": "os_version",
    "osSku": "os_sku",
    "osEdition": "os_edition",
    "computerName": "computer_name",
    "machineFqdn": "machine_fqdn",
    "dnsFqdn": "dns_fqdn",
    "domainName": "domain_name",
}

FACT_FIELDS: tuple[str, ...] = (*AGENT_HEARTBEAT_FACTS.values(), "detected_properties")
FACT_LIMITS = textguard.Limits(max_bytes=64 * 1024, max_depth=4, max_string=4096)


def machine_heartbeat_facts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The model fields a heartbeat body may set (agent version, OS facts, names, detected properties)."""
    facts: dict[str, Any] = {}
    for key, field in AGENT_HEARTBEAT_FACTS.items():
        value = payload.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            max_length = Machine._meta.get_field(field).max_length
            facts[field] = str(value)[:max_length]
    if "os_name" in facts:
        facts["os_name"] = facts["os_name"].lower()
        if facts["os_name"] not in ("linux", "windows"):
            del facts["os_name"]
    if isinstance(payload.get("fqdn"), str):
        facts.setdefault("machine_fqdn", payload["fqdn"][:255])
        facts.setdefault("dns_fqdn", payload["fqdn"][:255])
    detected = payload.get("detectedProperties")
    if isinstance(detected, Mapping):
        facts["detected_properties"] = {str(k)[:100]: str(v)[:500] for k, v in list(detected.items())[:50]}
    return facts
