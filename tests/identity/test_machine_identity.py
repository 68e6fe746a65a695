"""A machine's system-assigned identity at the token endpoint (issue 16): a client assertion signed by the machine
key → an app token whose ``oid`` is the machine's principal id, usable on the ARM API as a principal of kind
``machine`` with no built-in role. Every bad assertion, and a deleted, Expired or re-keyed machine, is refused."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from azcmagent import identity, protocol
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from arcportal import authz
from identity import machine_identities
from identity.authentication import principal_from_claims
from machines.models import Machine
from machines.services import machine_issue_certificate, machine_record_heartbeat, machine_register
from tests.armclient import API, ArmClient, machine_path, rg_path

pytestmark = pytest.mark.django_db

HOST = "portal.example"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(autouse=True)
def _allow_test_hosts(settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver", HOST]


def _onboard(subscription, name: str = "web-01"):
    """A machine registered and certified as ``azcmagent connect`` does, with a heartbeat a minute ago."""
    from machines.models import ResourceGroup

    group, _ = ResourceGroup.objects.get_or_create(
        subscription=subscription, name="rg-msi", defaults={"location": "westeurope"}
    )
    key = identity.new_key()
    result = machine_register(
        resource_group=group,
        name=name,
        location="westeurope",
        properties={"vmId": str(uuid.uuid4()), "vmUuid": f"HW-{name}", "clientPublicKey": identity.public_key_b64(key)},
        onboarding_method="ServicePrincipal",
        onboarded_by="app",
    )
    issued = machine_issue_certificate(machine_id=result.instance.pk, public_key_b64=identity.public_key_b64(key))
    machine_record_heartbeat(machine_id=result.instance.pk, at=timezone.now() - timedelta(minutes=1), facts={})
    return Machine.objects.get(pk=result.instance.pk), key, issued.thumbprint


@pytest.fixture
def onboarded(subscription):
    return _onboard(subscription)


def _token_url(subscription) -> str:
    return f"https://{HOST}/{subscription.tenant.tenant_id}/oauth2/v2.0/token"


def _assertion(machine, key, thumbprint, subscription, **overrides) -> str:
    args = {
        "thumbprint": thumbprint,
        "client_id": str(machine.identity_principal_id),
        "audience": _token_url(subscription),
    }
    args.update(overrides)
    return protocol.client_assertion(key, **args)


def _post(client, subscription, machine, assertion, **fields):
    data = {
        "grant_type": "client_credentials",
        "client_id": str(machine.identity_principal_id),
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": "https://management.azure.com/.default",
    }
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post(f"/{subscription.tenant.tenant_id}/oauth2/v2.0/token", data, secure=True, HTTP_HOST=HOST)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_a_machine_key_assertion_gets_a_machine_identity_token(client, subscription, onboarded):
    machine, key, thumbprint = onboarded
    response = _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 300
    claims = _claims(body["access_token"])
    principal_id = str(machine.identity_principal_id)
    assert claims["oid"] == claims["sub"] == claims["appid"] == principal_id and claims["idtyp"] == "app"
    assert claims["tid"] == str(subscription.tenant.tenant_id) and claims["aud"] == "https://management.azure.com/"
    assert claims["xms_mirid"] == machine.arm_id and claims["xms_arc_x5t"] == thumbprint.upper()
    assert claims["iss"] == f"https://{HOST}/{subscription.tenant.tenant_id}/v2.0"
    principal = principal_from_claims(claims)
    assert principal.kind == authz.MACHINE and principal.object_id == principal_id
    assert principal.actor_type == "ManagedIdentity"
    assert not authz.can(principal, authz.READ, machine.arm_id), "a machine identity holds no built-in role"


def test_the_identity_token_is_refused_on_arm_without_a_role_and_after_delete_or_expiry(
    client, subscription, onboarded
):
    machine, key, thumbprint = onboarded
    token = _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)).json()
    arm = ArmClient(token["access_token"])
    group_path = rg_path(subscription, "rg-msi")
    listed = arm.get(f"{group_path}/providers/Microsoft.HybridCompute/machines?{API}")
    assert listed.status_code == 403 and listed.json()["error"]["code"] == "AuthorizationFailed"
    assert str(machine.identity_principal_id) in listed.json()["error"]["message"]

    # Expired: the last heartbeat is older than ARC_EXPIRED_AFTER_DAYS; the token already issued stops working.
    Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now() - timedelta(days=400))
    expired = arm.get(f"{machine_path(subscription, 'rg-msi', 'web-01')}?{API}")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "Expired" in expired.json()["error"]["message"]
    Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now())
    assert arm.get(f"{group_path}/providers/Microsoft.HybridCompute/machines?{API}").status_code == 403

    machine.delete()
    gone = arm.get(f"{group_path}/providers/Microsoft.HybridCompute/machines?{API}")
    assert gone.status_code == 401 and "deleted" in gone.json()["error"]["message"]


def test_a_reader_assignment_to_the_machine_identity_lets_it_read_its_group_only(client, subscription, onboarded):
    from identity.role_assignments import role_assignment_create
    from machines.models import ResourceGroup

    machine, key, thumbprint = onboarded
    other_group = ResourceGroup.objects.create(subscription=subscription, name="rg-other", location="westeurope")
    _onboard(subscription, "web-02")
    token = _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)).json()
    arm = ArmClient(token["access_token"])
    role_assignment_create(
        scope=f"{subscription.arm_id}/resourceGroups/rg-msi",
        role_definition_id=authz.ROLES_BY_NAME[authz.READER].id,
        principal_id=str(machine.identity_principal_id),
        principal_kind=authz.MACHINE,
    )
    listed = arm.get(f"{rg_path(subscription, 'rg-msi')}/providers/Microsoft.HybridCompute/machines?{API}")
    assert listed.status_code == 200 and [m["name"] for m in listed.json()["value"]] == ["web-01", "web-02"]
    mine = arm.get(f"{machine_path(subscription, 'rg-msi', 'web-01')}?{API}").json()
    assert mine["identity"]["principalId"] == str(machine.identity_principal_id)
    elsewhere = arm.get(f"{rg_path(subscription, other_group.name)}/providers/Microsoft.HybridCompute/machines?{API}")
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "AuthorizationFailed"
    write = arm.patch(f"{machine_path(subscription, 'rg-msi', 'web-01')}?{API}", {"tags": {"x": "1"}})
    assert write.status_code == 403 and write.json()["error"]["code"] == "AuthorizationFailed"


def _refusal(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_description"] == machine_identities.WRONG_ASSERTION
    assert "access_token" not in body


@pytest.mark.parametrize(
    "case",
    [
        "wrong-audience",
        "replay",
        "other-key",
        "unknown-thumbprint",
        "too-long",
        "expired",
        "future",
        "other-principal",
        "unknown-principal",
        "not-a-jwt",
        "no-x5t",
        "hs256",
        "sub-differs",
        "infinite-exp",
    ],
)
def test_bad_assertions_are_one_invalid_client(client, subscription, onboarded, case):
    machine, key, thumbprint = onboarded
    url = _token_url(subscription)
    client_id = None
    now = time.time()
    if case == "wrong-audience":
        assertion = _assertion(machine, key, thumbprint, subscription, audience=url.replace(HOST, "evil.example"))
    elif case == "replay":
        assertion = _assertion(machine, key, thumbprint, subscription)
        assert _post(client, subscription, machine, assertion).status_code == 200
    elif case == "other-key":
        assertion = _assertion(machine, identity.new_key(), thumbprint, subscription)
    elif case == "unknown-thumbprint":
        assertion = _assertion(machine, key, "CD" * 20, subscription)
    elif case == "too-long":
        assertion = _assertion(machine, key, thumbprint, subscription, lifetime=601)
    elif case == "expired":
        assertion = _assertion(machine, key, thumbprint, subscription, now=now - 900)
    elif case == "future":
        assertion = _assertion(machine, key, thumbprint, subscription, now=now + 900)
    elif case == "other-principal":
        other, _, _ = _onboard(subscription, "web-02")
        client_id = str(other.identity_principal_id)
        assertion = _assertion(machine, key, thumbprint, subscription, client_id=client_id)
    elif case == "unknown-principal":
        client_id = str(uuid.uuid4())
        assertion = _assertion(machine, key, thumbprint, subscription, client_id=client_id)
    elif case == "not-a-jwt":
        assertion = "not.a.jwt"
    elif case == "no-x5t":
        assertion = jwt.encode(
            {"iss": "x", "sub": "x", "aud": url, "iat": int(now), "exp": int(now) + 60}, key, "RS256"
        )
    elif case == "hs256":
        assertion = jwt.encode(
            {"iss": "x", "aud": url, "exp": int(now) + 60},
            "secret-of-32-bytes-at-least-0123456789",
            "HS256",
            headers={"x5t": protocol.x5t(thumbprint)},
        )
    elif case == "infinite-exp":  # signed by the machine itself: still a refusal, never a 500
        principal_id = str(machine.identity_principal_id)
        header = {"alg": "RS256", "typ": "JWT", "x5t": protocol.x5t(thumbprint)}
        body = (
            f'{{"iss":"{principal_id}","sub":"{principal_id}","aud":"{url}","iat":{int(now)},'
            f'"exp":Infinity,"jti":"{uuid.uuid4()}"}}'
        )
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(body.encode())}".encode()
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        assertion = f"{signing_input.decode()}.{_b64(signature)}"
    else:  # sub-differs
        principal_id = str(machine.identity_principal_id)
        claims = {"iss": principal_id, "sub": str(uuid.uuid4()), "aud": url, "iat": int(now), "exp": int(now) + 60}
        assertion = jwt.encode(
            {**claims, "jti": str(uuid.uuid4())}, key, "RS256", headers={"x5t": protocol.x5t(thumbprint)}
        )
    _refusal(_post(client, subscription, machine, assertion, client_id=client_id))


def test_deleted_expired_and_rekeyed_machines_get_no_token(client, subscription, onboarded):
    machine, key, thumbprint = onboarded
    # Expired (no heartbeat for longer than ARC_EXPIRED_AFTER_DAYS).
    Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now() - timedelta(days=400))
    _refusal(_post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)))
    Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=timezone.now())
    assert _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)).status_code == 200

    # A new certificate for the same key: the old thumbprint is no longer the machine's.
    reissued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=identity.public_key_b64(key))
    assert reissued.thumbprint != thumbprint
    _refusal(_post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)))
    assert (
        _post(client, subscription, machine, _assertion(machine, key, reissued.thumbprint, subscription)).status_code
        == 200
    )

    # The system-assigned identity removed (ARM identity.type None).
    Machine.objects.filter(pk=machine.pk).update(identity_type="")
    _refusal(_post(client, subscription, machine, _assertion(machine, key, reissued.thumbprint, subscription)))
    Machine.objects.filter(pk=machine.pk).update(identity_type="SystemAssigned")

    # The certificate's own expiry.
    Machine.objects.filter(pk=machine.pk).update(certificate_expires_at=timezone.now() - timedelta(seconds=1))
    _refusal(_post(client, subscription, machine, _assertion(machine, key, reissued.thumbprint, subscription)))
    Machine.objects.filter(pk=machine.pk).update(certificate_expires_at=timezone.now() + timedelta(days=1))

    machine.delete()
    _refusal(_post(client, subscription, machine, _assertion(machine, key, reissued.thumbprint, subscription)))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"client_assertion_type": "urn:other"}, "invalid_request"),
        ({"client_assertion": ""}, "invalid_request"),
        ({"client_secret": "also-a-secret"}, "invalid_request"),
        ({"scope": "https://vault.azure.net/.default"}, "invalid_scope"),
        ({"client_id": ""}, "invalid_request"),
    ],
)
def test_malformed_assertion_requests_are_specific_400s(client, subscription, onboarded, fields, error):
    machine, key, thumbprint = onboarded
    response = _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription), **fields)
    assert response.status_code == 400 and response.json()["error"] == error, response.content


def test_the_audience_may_name_the_tenant_in_any_case(client, subscription, onboarded):
    machine, key, thumbprint = onboarded
    upper = str(subscription.tenant.tenant_id).upper()
    assertion = _assertion(machine, key, thumbprint, subscription, audience=f"https://{HOST}/{upper}/oauth2/v2.0/token")
    response = client.post(
        f"/{upper}/oauth2/v2.0/token",
        {
            "grant_type": "client_credentials",
            "client_id": str(machine.identity_principal_id),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": "https://management.azure.com/.default",
        },
        secure=True,
        HTTP_HOST=HOST,
    )
    assert response.status_code == 200, response.content


def test_used_assertion_ids_are_forgotten_once_expired(client, subscription, onboarded):
    from identity.models import ClientAssertionNonce

    machine, key, thumbprint = onboarded
    assert _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)).status_code == 200
    ClientAssertionNonce.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription)).status_code == 200
    assert ClientAssertionNonce.objects.count() == 1


def test_openid_configuration_lists_private_key_jwt(client, subscription):
    config = client.get(f"/{subscription.tenant.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]


def test_x5t_parsing():
    assert machine_identities.thumbprint_from_x5t(protocol.x5t("AB" * 20)) == "AB" * 20
    for bad in (None, "", "!!", protocol.x5t("AB" * 16), "a" * 100, 5):
        assert machine_identities.thumbprint_from_x5t(bad) == ""


def test_failed_assertions_count_towards_the_sign_in_limit_of_the_client_id(client, subscription, onboarded, settings):
    settings.ARC_RATE_LIMIT_SIGNIN_PER_ACCOUNT = "3/10m"
    machine, key, thumbprint = onboarded
    for _ in range(3):
        _refusal(
            _post(client, subscription, machine, _assertion(machine, identity.new_key(), thumbprint, subscription))
        )
    # Even a good assertion is now refused before it is checked, with when to try again.
    limited = _post(client, subscription, machine, _assertion(machine, key, thumbprint, subscription))
    assert limited.status_code == 429 and limited.json()["error"] == "temporarily_unavailable"
    assert int(limited["Retry-After"]) > 0
