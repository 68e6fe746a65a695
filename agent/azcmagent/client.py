"""HTTP to the portal: identity (client credentials, device code), ARM (machine PUT/GET/DELETE), HIS."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from azcmagent import errors
from azcmagent.errors import AgentError

ARM_SCOPE = "https://management.azure.com/.default"
ARM_API_VERSION = "2024-07-10"
# The public client id azcmagent signs in with (the agent's well-known application id in this emulator).
AGENT_CLIENT_ID = "b4e2c6d1-7a1f-4c3b-9a55-7c1e2a3d4f60"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def ssl_context(ca_file: str | None) -> ssl.SSLContext | bool:
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


@dataclass
class Portal:
    url: str
    tenant_id: str
    ca_file: str | None = None
    proxy: str | None = None

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url.rstrip("/"),
            verify=ssl_context(self.ca_file),
            proxy=self.proxy or None,
            timeout=TIMEOUT,
            headers={"User-Agent": "azcmagent (ArcPortal reference agent)"},
        )

    def _post_form(self, path: str, data: dict[str, str]) -> httpx.Response:
        try:
            with self.http() as client:
                return client.post(path, data=data)
        except httpx.HTTPError as exc:
            raise AgentError(errors.NETWORK_ERROR, f"Could not reach {self.url}: {exc}") from exc

    # --- identity -------------------------------------------------------------------------------------------

    def token_client_credentials(self, client_id: str, client_secret: str) -> str:
        response = self._post_form(
            f"/{self.tenant_id}/oauth2/v2.0/token",
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": ARM_SCOPE,
            },
        )
        body = _json(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise AgentError(
                errors.TOKEN_FAILED,
                f"Failed to obtain an access token for service principal {client_id}: "
                f"{body.get('error', response.status_code)}: {body.get('error_description', response.text[:300])}",
            )
        return str(body["access_token"])

    def device_code_start(self, *, context: dict[str, str]) -> dict[str, Any]:
        response = self._post_form(
            f"/{self.tenant_id}/oauth2/v2.0/devicecode",
            {"client_id": AGENT_CLIENT_ID, "scope": f"{ARM_SCOPE} offline_access", **context},
        )
        body = _json(response)
        if response.status_code != 200 or not body.get("device_code"):
            raise AgentError(
                errors.TOKEN_FAILED,
                f"Device code sign-in could not start: {body.get('error', response.status_code)}: "
                f"{body.get('error_description', '')}",
            )
        return body

    def device_code_wait(
        self, flow: dict[str, Any], *, sleep: Callable[[float], None] = time.sleep, clock=time.monotonic
    ) -> str:
        interval = float(flow.get("interval", 5))
        deadline = clock() + float(flow.get("expires_in", 900))
        while True:
            sleep(interval)
            response = self._post_form(
                f"/{self.tenant_id}/oauth2/v2.0/token",
                {
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "client_id": AGENT_CLIENT_ID,
                    "device_code": flow["device_code"],
                },
            )
            body = _json(response)
            if response.status_code == 200 and body.get("access_token"):
                return str(body["access_token"])
            error = body.get("error", "")
            if error == "authorization_pending" and clock() < deadline:
                continue
            if error == "slow_down" and clock() < deadline:
                interval += 5
                continue
            if error == "access_denied":
                raise AgentError(errors.TOKEN_FAILED, "The sign-in request was denied on the device login page.")
            if error == "expired_token" or clock() >= deadline:
                raise AgentError(errors.TOKEN_FAILED, "The device code expired before anyone approved it.")
            raise AgentError(
                errors.TOKEN_FAILED, f"Device code sign-in failed: {error}: {body.get('error_description', '')}"
            )

    # --- ARM ------------------------------------------------------------------------------------------------

    @staticmethod
    def machine_path(subscription_id: str, resource_group: str, name: str) -> str:
        return (
            f"/subscriptions/{quote(subscription_id)}/resourceGroups/{quote(resource_group)}"
            f"/providers/Microsoft.HybridCompute/machines/{quote(name)}"
        )

    def arm(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        correlation_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """An ARM request; ``body`` goes out as exactly ``json_bytes(body)`` (what a key proof hashes)."""
        sent = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
        if correlation_id:
            sent["x-ms-correlation-request-id"] = correlation_id
        content = None
        if body is not None:
            content = json_bytes(body)
            sent["Content-Type"] = "application/json"
        try:
            with self.http() as client:
                return client.request(
                    method, path, params={"api-version": ARM_API_VERSION}, headers=sent, content=content
                )
        except httpx.HTTPError as exc:
            raise AgentError(errors.NETWORK_ERROR, f"Could not reach {self.url}: {exc}") from exc

    # --- HIS ------------------------------------------------------------------------------------------------

    def certificate(self, *, vm_id: str, token: str, csr: str) -> dict[str, Any]:
        try:
            with self.http() as client:
                response = client.post(
                    f"/his/machines/{vm_id}/certificate",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"csr": csr},
                )
        except httpx.HTTPError as exc:
            raise AgentError(errors.CERT_FROM_HIS, f"Could not reach {self.url}: {exc}") from exc
        body = _json(response)
        if response.status_code != 200 or "certificate" not in body:
            raise AgentError(errors.CERT_FROM_HIS, f"HIS answered {response.status_code}: {error_text(body, response)}")
        return body

    def heartbeat(self, *, vm_id: str, body: bytes, token: str) -> httpx.Response:
        with self.http() as client:
            return client.post(
                f"/his/machines/{vm_id}/heartbeat",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )


def json_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes of a JSON request body."""
    return json.dumps(body, separators=(",", ":")).encode()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (json.JSONDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def error_text(body: dict[str, Any], response: httpx.Response) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('message', '')}"
    if isinstance(error, str):
        return f"{error}: {body.get('error_description', '')}"
    return response.text[:300]


def error_code(body: dict[str, Any]) -> str:
    error = body.get("error")
    return str(error.get("code", "")) if isinstance(error, dict) else str(error or "")
