"""Identity endpoints: OIDC discovery, JWKS, the token endpoint (client credentials), issue_token, /downloads/ca.pem."""

from __future__ import annotations

import hashlib
import io
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command

from identity import pki, tokens
from identity.models import Role
from identity.service_principals import service_principal_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_test_hosts(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver", "portal.example"]


@pytest.fixture
def principal(subscription):
    return service_principal_create(display_name="sp", role=Role.CONTRIBUTOR, scope=subscription.arm_id)


def post_token(client, tenant_id, data, **extra):
    return client.post(f"/{tenant_id}/oauth2/v2.0/token", data, **extra)


def test_openid_configuration_has_absolute_https_endpoints_from_the_request_host(client, subscription):
    tenant_id = subscription.tenant.tenant_id
    response = client.get(
        f"/{tenant_id}/v2.0/.well-known/openid-configuration", secure=True, HTTP_HOST="portal.example:8443"
    )
    assert response.status_code == 200
    config = response.json()
    base = f"https://portal.example:8443/{tenant_id}"
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert config["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert config["issuer"] == f"{base}/v2.0"
    assert config["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert "client_credentials" in config["grant_types_supported"]


def test_openid_configuration_over_plain_http_points_at_the_public_https_url(client, subscription, settings):
    settings.ARC_PUBLIC_BASE_URL = "https://arc.example"
    config = client.get(f"/{subscription.tenant.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"].startswith("https://arc.example/")


def test_unknown_tenant_is_refused(client, subscription):
    assert client.get("/not-a-tenant/v2.0/.well-known/openid-configuration").status_code == 400
    response = post_token(client, "11111111-1111-1111-1111-111111111111", {"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_client_credentials_token_has_the_entra_claims(client, subscription, principal):
    tenant_id = str(subscription.tenant.tenant_id)
    response = post_token(
        client,
        tenant_id,
        {
            "client_id": str(principal.service_principal.client_id),
            "client_secret": principal.secret,
            "grant_type": "client_credentials",
            "scope": "https://management.azure.com/.default",
            "client_info": "1",
            "x-client-sku": "MSAL.Python",
        },
        secure=True,
        HTTP_HOST="portal.example",
        HTTP_X_CLIENT_VER="1.39.0",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    header = jwt.get_unverified_header(body["access_token"])
    keys = client.get(f"/{tenant_id}/discovery/v2.0/keys").json()["keys"]
    assert header["alg"] == "RS256" and header["kid"] == keys[0]["kid"]
    public_key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(
        body["access_token"], public_key, algorithms=["RS256"], audience="https://management.azure.com/"
    )
    assert claims["iss"] == f"https://portal.example/{tenant_id}/v2.0"
    assert claims["tid"] == tenant_id
    assert claims["oid"] == claims["sub"] == str(principal.service_principal.object_id)
    assert claims["appid"] == str(principal.service_principal.client_id)
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]


def test_client_secret_basic_is_accepted(client, subscription, principal):
    import base64

    basic = base64.b64encode(f"{principal.service_principal.client_id}:{principal.secret}".encode()).decode()
    response = post_token(
        client,
        subscription.tenant.tenant_id,
        {"grant_type": "client_credentials", "scope": "https://management.azure.com/.default"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_secret": "x"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": "abc"}, 401, "invalid_client"),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "abc",
                "client_secret": "x",
                "scope": "https://graph.microsoft.com/.default",
            },
            400,
            "invalid_scope",
        ),
    ],
)
def test_token_errors_are_oauth_json(client, subscription, data, status, error):
    response = post_token(client, subscription.tenant.tenant_id, data)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "error_description" in response.json()


def test_token_endpoint_needs_no_csrf_token(subscription, principal):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = post_token(
        strict,
        subscription.tenant.tenant_id,
        {
            "client_id": str(principal.service_principal.client_id),
            "client_secret": principal.secret,
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 200


def test_other_grants_plug_in_through_grant_handlers(client, subscription, admin_user, monkeypatch):
    seen = {}

    def fake_grant(request: tokens.TokenRequest):
        seen["data"] = dict(request.data)
        if request.data.get("code") != "ok":
            raise tokens.OAuthError("authorization_pending", "Not yet.")
        return tokens.issue_user_token(
            user=admin_user, tenant_id=str(request.tenant.tenant_id), issuer=request.issuer
        ).response_body()

    monkeypatch.setitem(tokens.GRANT_HANDLERS, "urn:test:grant", fake_grant)
    tenant_id = subscription.tenant.tenant_id
    pending = post_token(client, tenant_id, {"grant_type": "urn:test:grant", "code": "no"})
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    done = post_token(client, tenant_id, {"grant_type": "urn:test:grant", "code": "ok"})
    assert done.status_code == 200 and done.json()["expires_in"] == 3599
    config = client.get(f"/{tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert "urn:test:grant" in config["grant_types_supported"]


def test_issue_token_command_prints_a_user_token_that_the_arm_api_accepts(subscription, admin_user):
    from tests.armclient import ArmClient

    out = io.StringIO()
    call_command("issue_token", "--user", admin_user.username, stdout=out)
    token = out.getvalue().strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["idtyp"] == "user" and claims["upn"] == admin_user.username
    response = ArmClient(token).get(f"{subscription.arm_id}?api-version=2022-12-01")
    assert response.status_code == 200
    assert response.json()["subscriptionId"] == str(subscription.subscription_id)


def test_issue_token_for_an_unknown_user_fails(subscription):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("issue_token", "--user", "nobody", stdout=io.StringIO())


def test_expired_and_foreign_tokens_are_rejected(subscription, admin_user):
    import datetime as dt

    from django.utils import timezone

    tenant_id = str(subscription.tenant.tenant_id)
    old = tokens.issue_user_token(
        user=admin_user, tenant_id=tenant_id, issuer="x", now=timezone.now() - dt.timedelta(hours=2)
    ).access_token
    with pytest.raises(tokens.TokenInvalid) as info:
        tokens.verify_access_token(old, tenant_id=tenant_id)
    assert info.value.code == "ExpiredAuthenticationToken"
    foreign = tokens.issue_user_token(
        user=admin_user, tenant_id="22222222-2222-2222-2222-222222222222", issuer="x"
    ).access_token
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_access_token(foreign, tenant_id=tenant_id)
    issued = int(time.time())  # valid now, whatever the clock says: only the algorithm is wrong
    forged = jwt.encode(
        {"tid": tenant_id, "oid": "x", "idtyp": "user", "exp": issued + 3600, "iat": issued, "nbf": issued}
        | {"aud": tokens.AUDIENCE},
        "secret",
        algorithm="HS256",
    )
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_access_token(forged, tenant_id=tenant_id)


def test_ca_certificate_download_is_public_and_matches_the_fingerprint(client, subscription):
    response = client.get("/downloads/ca.pem")
    assert response.status_code == 200
    cert = x509.load_pem_x509_certificate(response.content)
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert digest == pki.ca_fingerprint_sha256()
    assert response.content == pki.ca_certificate_pem()
