"""Every refusal of the agent plane leaves through ``arcportal.arm.errors``: the ARM error body, its status, and the
content type ``arcportal.arm.errors`` gives every ARM error (``application/json; charset=utf-8``)."""

from __future__ import annotations

import json
import uuid

import pytest
from azcmagent import identity

from arcportal.arm.errors import CONTENT_TYPE
from identity.models import Role
from identity.service_principals import service_principal_create
from identity.tokens import issue_app_token
from machines.services import machine_register, resource_group_create

pytestmark = pytest.mark.django_db


def _refusal(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == CONTENT_TYPE
    body = json.loads(response.content)
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code"),
    [
        ("/his/machines/not-a-guid/heartbeat", {}, b"{}", 400, "InvalidVmId"),
        (f"/his/machines/{uuid.uuid4()}/heartbeat", {}, b"{}", 401, "InvalidToken"),
        (f"/his/machines/{uuid.uuid4()}/heartbeat", {"HTTP_AUTHORIZATION": "Bearer x"}, b"{}", 410, "MachineDeleted"),
        (f"/his/machines/{uuid.uuid4()}/heartbeat", {}, b"{" + b" " * 70_000 + b"}", 413, "BodyTooLarge"),
    ],
)
def test_heartbeat_refusals_are_arm_errors(client, path, headers, body, status, code):
    _refusal(client.post(path, data=body, content_type="application/json", **headers), status, code)


def test_a_replay_check_outage_says_when_to_retry(client, monkeypatch):
    """503 ReplayCheckUnavailable carries Retry-After, through the same renderer."""
    from agentplane import views
    from machines.heartbeats import HeartbeatNotVerifiable

    machine = type("M", (), {"pk": 1, "status": "Connected"})()
    monkeypatch.setattr(views, "machine_for_heartbeat", lambda vm_id: machine)
    monkeypatch.setattr(views, "verify_heartbeat", lambda **kw: {"jti": "j", "iat": 1, "exp": 2})

    def not_verifiable(**kwargs):
        raise HeartbeatNotVerifiable("j")

    monkeypatch.setattr(views, "heartbeat_ingest", not_verifiable)
    response = client.post(
        f"/his/machines/{uuid.uuid4()}/heartbeat",
        data=b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer t",
    )
    _refusal(response, 503, "ReplayCheckUnavailable")
    assert response["Retry-After"] == "5"


@pytest.fixture
def registered(subscription, tenant):
    group = resource_group_create(subscription=subscription, name="rg", location="westeurope")
    sp = service_principal_create(display_name="sp", role=Role.ONBOARDING, scope=subscription.arm_id).service_principal
    other = service_principal_create(display_name="other", role=Role.ONBOARDING, scope=subscription.arm_id)
    vm_id = str(uuid.uuid4())
    machine_register(
        resource_group=group,
        name="web-01",
        location="westeurope",
        properties={"vmId": vm_id, "clientPublicKey": identity.public_key_b64(identity.new_key())},
        onboarding_method="ServicePrincipal",
        onboarded_by=str(sp.client_id),
    )

    def token(principal) -> str:
        return issue_app_token(
            service_principal=principal, tenant_id=str(tenant.tenant_id), issuer="https://t"
        ).access_token

    return vm_id, token(sp), token(other.service_principal)


def _certificate(client, vm_id, token, body):
    return client.post(
        f"/his/machines/{vm_id}/certificate",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_certificate_refusals_are_arm_errors(client, registered):
    vm_id, token, other_token = registered
    _refusal(_certificate(client, str(uuid.uuid4()), token, {"csr": ""}), 404, "ResourceNotFound")
    _refusal(_certificate(client, vm_id, other_token, {"csr": ""}), 403, "AuthorizationFailed")
    _refusal(_certificate(client, vm_id, token, {"csr": "not a csr"}), 400, "InvalidCsr")
    # A CSR of another key than the registered one: the service's Invalid, rendered by the same handler.
    csr = identity.csr_pem(identity.new_key(), vm_id=vm_id)
    _refusal(_certificate(client, vm_id, token, {"csr": csr}), 400, "KeyMismatch")
