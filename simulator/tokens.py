"""The fleet's ARM token: one sign-in with the service principal's client credentials, renewed before it expires,
and the error one machine's failed onboarding raises. No Django."""

from __future__ import annotations

import asyncio
import time

import httpx
from azcmagent.client import ARM_SCOPE

from simulator.config import TOKEN_RENEW_BEFORE_SECONDS, FleetConfig
from simulator.transport import _answer


class TokenSource:
    """The service principal's ARM token, shared by the fleet and renewed ``TOKEN_RENEW_BEFORE_SECONDS`` early.

    One sign-in per token rather than per machine: a service principal secret is a PBKDF2 hash on the portal, and
    10,000 sign-ins would measure the hasher, not the fleet. The token is the same principal either way, so the
    portal's checks (onboard permission, "only the principal that registered it fetches the certificate") hold.
    """

    def __init__(self, client: httpx.AsyncClient, config: FleetConfig) -> None:
        self.client, self.config = client, config
        self.token = ""
        self.expires = 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> str:
        async with self.lock:
            if self.token and time.monotonic() < self.expires - TOKEN_RENEW_BEFORE_SECONDS:
                return self.token
            response = await self.client.post(
                f"/{self.config.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                    "scope": ARM_SCOPE,
                },
            )
            body = _answer(response)
            if response.status_code != 200 or not body.get("access_token"):
                raise OnboardingFailed(f"token {response.status_code} {body.get('error', '')}".strip())
            self.token = str(body["access_token"])
            self.expires = time.monotonic() + float(body.get("expires_in") or 3599)
            return self.token


class OnboardingFailed(Exception):
    """One machine could not onboard; the message is the failure's key in ``FleetStats.onboarding_failures``."""
