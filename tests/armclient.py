"""The ARM plane from a test: ``ArmClient`` (the test client with a bearer token and JSON bodies), path helpers, and
the fixtures (registered by tests/conftest.py) that mint tokens for a portal user and for service principals."""

from __future__ import annotations

import pytest
from django.test import Client

API = "api-version=2026-07-15"
RG_API = "api-version=2025-04-01"


@pytest.fixture
def user_token(subscription, admin_user) -> str:
    from identity.tokens import issue_user_token

    return issue_user_token(
        user=admin_user, tenant_id=str(subscription.tenant.tenant_id), issuer="https://testserver/x/v2.0"
    ).access_token


@pytest.fixture
def sp_token(subscription):
    """``sp_token(role, scope=None)`` → (token, service principal): an app token for a new service principal."""
    from identity.service_principals import service_principal_create
    from identity.tokens import issue_app_token

    def make(role: str, scope: str | None = None):
        created = service_principal_create(display_name=f"sp-{role}", role=role, scope=scope or subscription.arm_id)
        issued = issue_app_token(
            service_principal=created.service_principal,
            tenant_id=str(subscription.tenant.tenant_id),
            issuer="https://testserver/x/v2.0",
        )
        return issued.access_token, created.service_principal

    return make


class ArmClient:
    """Django's test client speaking to the ARM plane with a bearer token and JSON bodies."""

    def __init__(self, token: str | None):
        self.client = Client(enforce_csrf_checks=True)
        self.token = token

    def _headers(self, extra):
        headers = {"HTTP_ACCEPT": "application/json"}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    def request(self, method: str, path: str, body=None, *, raw: bytes | str | None = None, **extra):
        import json

        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        kwargs = self._headers(extra)
        func = getattr(self.client, method.lower())
        if method.upper() in ("GET", "HEAD"):
            return func(path, **kwargs)
        return func(path, data=data, content_type=kwargs.pop("content_type", "application/json"), **kwargs)

    def get(self, path, **extra):
        return self.request("GET", path, **extra)

    def head(self, path, **extra):
        return self.request("HEAD", path, **extra)

    def put(self, path, body=None, **extra):
        return self.request("PUT", path, body, **extra)

    def patch(self, path, body=None, **extra):
        return self.request("PATCH", path, body, **extra)

    def delete(self, path, **extra):
        return self.request("DELETE", path, **extra)


@pytest.fixture
def arm(user_token) -> ArmClient:
    return ArmClient(user_token)


@pytest.fixture
def arm_as():
    return ArmClient


def sub_path(subscription) -> str:
    return f"/subscriptions/{subscription.subscription_id}"


def rg_path(subscription, name: str) -> str:
    return f"{sub_path(subscription)}/resourceGroups/{name}"


def machine_path(subscription, rg: str, name: str) -> str:
    return f"{rg_path(subscription, rg)}/providers/Microsoft.HybridCompute/machines/{name}"
