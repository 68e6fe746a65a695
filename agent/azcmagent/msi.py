"""The machine's system-assigned identity: tokens from the portal for HIMDS, and the IMDS metadata it serves.

Tokens: ``POST {portal}/{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``, ``client_id`` = the
identity's principal id (agentconfig ``identityPrincipalId``, from the machine's registration) and a client
assertion signed by the machine key (``protocol.client_assertion``; no secret on disk). ``scope`` is the requested
resource + ``/.default``. Tokens are cached per resource (the exact string asked for) until 5 minutes before they
expire. Metadata comes from agentconfig.json and this machine's facts only, so it answers while the portal is down.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from azcmagent import __version__, protocol, sysinfo
from azcmagent.client import Portal, _json

RENEW_BEFORE_SECONDS = 300
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AZ_ENVIRONMENTS = {
    "AzureCloud": "AzurePublicCloud",
    "AzureUSGovernment": "AzureUSGovernmentCloud",
    "AzureChinaCloud": "AzureChinaCloud",
}


class TokenError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description


class MachineIdentity:
    def __init__(self, *, agentconfig: dict[str, Any], key, proxy: str | None, clock=time.time) -> None:
        self.principal_id = agentconfig.get("identityPrincipalId", "")
        self.thumbprint = agentconfig["certificateThumbprint"]
        self.key = key
        self.clock = clock
        self.portal = Portal(
            url=agentconfig["portalUrl"],
            tenant_id=agentconfig.get("tenantId", ""),
            ca_file=agentconfig.get("caFile") or None,
            proxy=proxy,
        )
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def token(self, resource: str) -> dict[str, Any]:
        """``{"access_token", "expires_on", "resource", "token_type"}`` for exactly ``resource``."""
        with self._lock:
            cached = self._cache.get(resource)
            if cached and cached["expires_on"] - RENEW_BEFORE_SECONDS > self.clock():
                return dict(cached)
            fresh = self._fetch(resource)
            self._cache[resource] = fresh
            return dict(fresh)

    def _fetch(self, resource: str) -> dict[str, Any]:
        if not self.principal_id:
            raise TokenError(
                400,
                "invalid_request",
                "This machine has no system-assigned identity recorded (identityPrincipalId in agentconfig.json): "
                "connect the agent again to a portal that assigns one.",
            )
        path = protocol.token_path(self.portal.tenant_id)
        audience = f"{self.portal.url.rstrip('/')}{path}"
        form = {
            "grant_type": "client_credentials",
            "client_id": self.principal_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": protocol.client_assertion(
                self.key, thumbprint=self.thumbprint, client_id=self.principal_id, audience=audience
            ),
            "scope": f"{resource}/.default",
        }
        now = self.clock()
        try:
            with self.portal.http() as client:
                response = client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise TokenError(503, "service_unavailable", f"The portal's token endpoint is unreachable: {exc}") from exc
        body = _json(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise TokenError(
                400,
                str(body.get("error") or f"http_{response.status_code}"),
                str(body.get("error_description") or "The portal did not issue a token."),
            )
        try:
            expires_in = int(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600
        return {
            "access_token": str(body["access_token"]),
            "expires_on": int(now) + expires_in,
            "not_before": int(now),
            "resource": resource,
            "token_type": str(body.get("token_type") or "Bearer"),
        }


def compute_metadata(agentconfig: dict[str, Any], facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """IMDS ``compute`` in the shape HIMDS answers (ARC-REFERENCE.md §4)."""
    facts = facts if facts is not None else sysinfo.facts(__version__)
    tags = agentconfig.get("tags") if isinstance(agentconfig.get("tags"), dict) else {}
    return {
        "azEnvironment": AZ_ENVIRONMENTS.get(agentconfig.get("cloud", ""), "AzurePublicCloud"),
        "isHostCompatibilityLayerVm": "",
        "location": agentconfig.get("location", ""),
        "name": agentconfig.get("resourceName", ""),
        "offer": "",
        "osType": str(facts.get("osType") or facts.get("osName") or ""),
        "placementGroupId": "",
        "plan": {"name": "", "product": "", "publisher": ""},
        "platformFaultDomain": "",
        "platformUpdateDomain": "",
        "provider": "",
        "publicKeys": None,
        "publisher": "",
        "resourceGroupName": agentconfig.get("resourceGroup", ""),
        "customData": "",
        "resourceId": agentconfig.get("resourceId", ""),
        "securityProfile": {"secureBootEnabled": "", "virtualTpmEnabled": ""},
        "sku": str(facts.get("osSku") or ""),
        "storageProfile": {},
        "subscriptionId": agentconfig.get("subscriptionId", ""),
        "tags": ";".join(f"{k}:{v}" for k, v in tags.items()),
        "tagsList": [{"name": k, "value": v} for k, v in tags.items()],
        "version": str(facts.get("osVersion") or ""),
        "vmId": agentconfig.get("vmId", ""),
        "vmScaleSetName": "",
        "vmSize": "",
        "zone": "",
    }
