"""Issue 10, item 17: the inputs that used to answer 500 now answer a specific 4xx in the shape of their plane.

Each case is one line of the issue; the client never raises the server's exception (``raise_request_exception``
off), so a 500 is seen as a 500. Runs on both databases (NUL is a PostgreSQL refusal; lone surrogates fail on both).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from identity.models import DeviceCode
from machines.models import Extension, Machine, MachineTag, ResourceGroup
from onboarding.models import OnboardingFailure
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, user_token  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def arm_raw(user_token) -> ArmClient:  # noqa: F811
    arm = ArmClient(user_token)
    arm.client = Client(raise_request_exception=False)
    return arm


@pytest.fixture
def portal(admin_user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


def _arm_error(response, status=400, code="InvalidRequestContent") -> dict:
    assert response.status_code == status, response.content[:400]
    error = response.json()["error"]
    assert error["code"] == code
    return error


def test_deep_json_in_a_failure_report_is_a_400():
    response = Client(raise_request_exception=False).put("/his/log", data="[" * 5000, content_type="application/json")
    assert "nests deeper" in _arm_error(response)["message"]
    assert not OnboardingFailure.objects.exists()


def test_deep_json_in_an_arm_put_is_a_400(arm_raw, subscription):
    response = arm_raw.put(f"{rg_path(subscription, 'rg-deep')}?{RG_API}", raw="[" * 5000)
    assert "nests deeper" in _arm_error(response)["message"]
    assert not ResourceGroup.objects.filter(name="rg-deep").exists()


def test_a_lone_surrogate_in_a_tag_name_is_a_400(arm_raw, subscription):
    body = json.dumps({"location": "eastus", "tags": {"env\ud800": "prod"}})
    error = _arm_error(arm_raw.put(f"{rg_path(subscription, 'rg-sur')}?{RG_API}", raw=body))
    assert "lone surrogate" in error["message"] and error["target"] == "tags.env\\ud800"
    assert not ResourceGroup.objects.filter(name="rg-sur").exists()
    assert arm_raw.put(f"{rg_path(subscription, 'rg-sur')}?{RG_API}", {"location": "eastus"}).status_code == 201
    path = f"{machine_path(subscription, 'rg-sur', 'vm-sur')}?{API}"
    body = json.dumps({"location": "eastus", "tags": {"\ud800": "x"}})
    _arm_error(arm_raw.put(path, raw=body))
    assert not Machine.objects.filter(name="vm-sur").exists() and not MachineTag.objects.exists()


def test_a_lone_surrogate_in_an_extension_setting_is_a_400(arm_raw, subscription):
    assert arm_raw.put(f"{rg_path(subscription, 'rg-ext')}?{RG_API}", {"location": "eastus"}).status_code == 201
    assert (
        arm_raw.put(f"{machine_path(subscription, 'rg-ext', 'vm-ext')}?{API}", {"location": "eastus"}).status_code
        == 200
    )
    path = f"{machine_path(subscription, 'rg-ext', 'vm-ext')}/extensions/custom?{API}"
    body = json.dumps({"location": "eastus", "properties": {"settings": {"commandToExecute": "echo \ud83d"}}})
    error = _arm_error(arm_raw.put(path, raw=body))
    assert error["target"] == "properties.settings.commandToExecute"
    assert not Extension.objects.exists()


def test_nul_in_the_device_code_forms_is_a_400(portal, tenant):
    response = portal.post("/devicelogin", {"code": "ABCD\x00EFGH"})
    assert response.status_code == 400
    oauth = Client(raise_request_exception=False).post(
        f"/{tenant.tenant_id}/oauth2/v2.0/devicecode", {"client_id": "azcmagent\x00", "machine_name": "web\x00"}
    )
    assert oauth.status_code == 400, oauth.content
    assert oauth.json()["error"] == "invalid_request" and "NUL" in oauth.json()["error_description"]
    assert not DeviceCode.objects.exists()


def test_nul_in_the_token_endpoint_form_is_invalid_request(tenant):
    response = Client(raise_request_exception=False).post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        {"grant_type": "client_credentials", "client_id": "app\x00", "client_secret": "s"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("digits", ["9" * 5000, "9" * 4000, "²"])
def test_a_huge_or_odd_id_in_a_portal_form_is_a_400(portal, digits):
    delete = portal.post("/portal/machines/delete", {"machine": digits, "confirm": "delete"})
    assert delete.status_code == 400, delete.status_code
    assign = portal.post("/portal/machines/assign-tags", {"machine": digits, "tag_name": "env", "tag_value": "x"})
    assert assign.status_code == 400


@pytest.mark.parametrize("digits", ["9" * 5000, "9" * 30])
def test_a_huge_id_in_a_portal_url_is_a_4xx(portal, digits):
    assert portal.get(f"/portal/webhooks/{digits}").status_code in (400, 404)
    assert portal.post(f"/portal/webhooks/{digits}/delete").status_code in (400, 404)


def test_nul_in_a_portal_query_string_or_path_is_the_400_page(portal):
    page = portal.get("/portal/onboarding-errors?correlation_id=a%00b")
    assert page.status_code == 400 and b"NUL" in page.content
    assert (
        portal.get(
            "/portal/subscriptions/a%00b/resourceGroups/x/providers/Microsoft.HybridCompute/machines/y"
        ).status_code
        == 400
    )


def test_a_form_encoded_body_on_the_json_planes_is_a_4xx(tenant):
    """The guard reads form bodies; a view that hashes request.body afterwards must still be able to read it."""
    import uuid

    client = Client(raise_request_exception=False)
    for url in (f"/his/machines/{uuid.uuid4()}/heartbeat", "/his/log"):
        response = client.post(url, {"osSku": "x"}, HTTP_AUTHORIZATION="Bearer x")  # multipart/form-data
        assert 400 <= response.status_code < 500, (url, response.status_code)
