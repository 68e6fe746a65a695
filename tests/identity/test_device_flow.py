"""The device authorization endpoint and the device-code grant, by HTTP and through MSAL's own device flow."""

from __future__ import annotations

import time

import jwt
import pytest
from django.core.cache import cache

from identity.device_codes import device_code_approve
from identity.models import DeviceCode

pytestmark = pytest.mark.django_db

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def test_devicecode_endpoint_answers_rfc8628_fields_and_the_sign_in_message(client, tenant, settings):
    settings.ARC_PUBLIC_BASE_URL = "https://portal.example:8443"
    response = client.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/devicecode",
        {"client_id": "agent", "scope": "https://management.azure.com/.default", "machine_name": "web-01"},
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"device_code", "user_code", "verification_uri", "expires_in", "interval", "message"}
    assert body["verification_uri"] == "https://portal.example:8443/devicelogin"
    assert 890 <= body["expires_in"] <= 900 and body["interval"] == 5
    assert body["message"] == (
        "To sign in, use a web browser to open the page https://portal.example:8443/devicelogin and enter the code "
        f"{body['user_code']} to authenticate."
    )
    record = DeviceCode.objects.get()
    assert (record.machine_name, record.requesting_ip) == ("web-01", "198.51.100.4")


def test_devicecode_endpoint_refuses_an_unknown_tenant_and_a_missing_client(client, tenant):
    assert (
        client.post("/00000000-0000-0000-0000-000000000000/oauth2/v2.0/devicecode", {"client_id": "a"}).status_code
        == 400
    )
    missing = client.post(f"/{tenant.tenant_id}/oauth2/v2.0/devicecode", {})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_token_endpoint_exchanges_an_approved_code_once_for_a_user_token(client, tenant, admin_user):
    start = client.post(f"/{tenant.tenant_id}/oauth2/v2.0/devicecode", {"client_id": "agent"}).json()
    token_url = f"/{tenant.tenant_id}/oauth2/v2.0/token"
    form = {"grant_type": DEVICE_GRANT, "client_id": "agent", "device_code": start["device_code"]}
    pending = client.post(token_url, form)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    device_code_approve(device_code_id=DeviceCode.objects.get().pk, user=admin_user)
    DeviceCode.objects.update(last_polled_at=None)  # don't wait out the interval in this test
    granted = client.post(token_url, form)
    assert granted.status_code == 200, granted.content
    claims = jwt.decode(granted.json()["access_token"], options={"verify_signature": False})
    assert claims["upn"] == "admin" and claims["idtyp"] == "user" and claims["tid"] == str(tenant.tenant_id)
    DeviceCode.objects.update(last_polled_at=None)
    reused = client.post(token_url, form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_openid_configuration_advertises_the_device_grant(client, tenant):
    config = client.get(f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["device_authorization_endpoint"].endswith(f"/{tenant.tenant_id}/oauth2/v2.0/devicecode")
    assert DEVICE_GRANT in config["grant_types_supported"]


@pytest.mark.django_db(transaction=True)
def test_msal_device_flow_obtains_a_token(tls_live_server, tenant, admin_user, settings, monkeypatch):
    import msal

    # requests lets these environment variables override MSAL's verify=; trust only the portal CA here.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    settings.ARC_DEVICE_CODE_INTERVAL_SECONDS = 1
    app = msal.PublicClientApplication(
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        authority=f"{tls_live_server.url}/{tenant.tenant_id}",
        instance_discovery=False,
        verify=tls_live_server.ca_file,
    )
    flow = app.initiate_device_flow(scopes=["https://management.azure.com/.default"])
    assert "user_code" in flow, flow
    assert flow["message"].startswith(
        f"To sign in, use a web browser to open the page {tls_live_server.url}/devicelogin"
    )

    # One poll only (MSAL's non-blocking mode): the user has not approved yet.
    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda flow: True)
    assert pending.get("error") == "authorization_pending", pending
    record = DeviceCode.objects.get(user_code=flow["user_code"])
    device_code_approve(device_code_id=record.pk, user=admin_user)
    time.sleep(flow["interval"])
    flow["expires_at"] = time.time() + 30  # bound the wait
    result = app.acquire_token_by_device_flow(flow)
    app.http_client.close()  # no kept-alive connection left for the live server to tear down
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["upn"] == "admin"
    assert DeviceCode.objects.get().state == "consumed"
