"""Issue 10 item 5: a machine's identity (its agent key and vmId) can't be taken over through ARM.

Re-registering a machine that already has an agent key needs a proof of possession of that key: a JWT signed by
the current key, sent as ``X-ArcPortal-Key-Proof`` with the PUT and bound to it (``htm``, ``htu``, the SHA-256 of
the exact body). Without it a second principal that can read the machine (and so its vmUuid) gets 409
``ResourceExists``; ``clientPublicKey``/``vmId`` can't be changed or cleared by a plain PUT or a PATCH; the way to
free a name without the key is a delete by a principal allowed to delete, which is logged with who did it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid

import jwt
import pytest
from azcmagent import identity

from machines.models import Machine, MachineStatusEvent
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path

pytestmark = pytest.mark.django_db

ONBOARDING = "Azure Connected Machine Onboarding"
PROOF_HEADER = "HTTP_X_ARCPORTAL_KEY_PROOF"
KEY_A = identity.new_key()  # the real agent's key
KEY_B = identity.new_key()  # another principal's key


def registration(key, *, vm_uuid: str = "HW-1", vm_id: str | None = None) -> dict:
    return {
        "location": "westeurope",
        "properties": {
            "vmId": vm_id or str(uuid.uuid4()),
            "vmUuid": vm_uuid,
            "clientPublicKey": identity.public_key_b64(key),
            "osName": "linux",
        },
    }


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def key_proof(key, *, path: str, body: bytes, method: str = "PUT", issued: int | None = None, **claims) -> str:
    """The wire format of the proof, written out here independently of the agent's implementation."""
    iat = int(time.time()) if issued is None else issued
    payload = {
        "iat": iat,
        "nbf": iat,
        "exp": iat + 300,
        "jti": str(uuid.uuid4()),
        "htm": method,
        "htu": path,
        "bodySha256": b64url_sha256(body),
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"typ": "arc-key-proof+jwt"})


def put_with_proof(client: ArmClient, path: str, body: dict, proof_key, **proof_claims):
    raw = json.dumps(body).encode()
    proof = key_proof(proof_key, path=path, body=raw, **proof_claims)
    return client.request("PUT", f"{path}?{API}", raw=raw, **{PROOF_HEADER: proof})


def error_code(response) -> str:
    return json.loads(response.content)["error"]["code"]


@pytest.fixture
def path(arm, subscription) -> str:
    assert arm.put(f"{rg_path(subscription, 'arc')}?{RG_API}", {"location": "westeurope"}).status_code == 201
    return machine_path(subscription, "arc", "web-01")


@pytest.fixture
def onboarded(path, sp_token, client):
    """web-01 registered by principal A with KEY_A, its certificate issued: a connected agent's machine."""
    token, _ = sp_token(ONBOARDING)
    body = registration(KEY_A)
    response = ArmClient(token).put(f"{path}?{API}", body)
    assert response.status_code == 200, response.content
    vm_id = body["properties"]["vmId"]
    issued = client.post(
        f"/his/machines/{vm_id}/certificate",
        data={"csr": identity.csr_pem(KEY_A, vm_id=vm_id)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert issued.status_code == 200, issued.content
    machine = Machine.objects.get()
    assert machine.certificate_thumbprint and machine.provisioning_state == "Succeeded"
    return machine


def test_another_onboarding_principal_cannot_take_a_machine_over_with_its_vmuuid(onboarded, path, sp_token, client):
    token, _ = sp_token(ONBOARDING)
    other = ArmClient(token)
    seen = other.get(f"{path}?{API}")
    assert seen.status_code == 200  # it may read the machine, vmUuid included
    before = Machine.objects.values().get()

    response = other.put(f"{path}?{API}", registration(KEY_B, vm_uuid=seen.json()["properties"]["vmUuid"]))
    assert response.status_code == 409, response.content
    assert error_code(response) == "ResourceExists"
    assert "proof" in json.loads(response.content)["error"]["message"]
    assert Machine.objects.values().get() == before  # key, vmId and certificate of the real agent untouched

    # Its own key never becomes a certificate for that machine either.
    stolen = client.post(
        f"/his/machines/{before['vm_id']}/certificate",
        data={"csr": identity.csr_pem(KEY_B, vm_id=str(before["vm_id"]))},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert stolen.status_code in (400, 403)
    assert Machine.objects.values().get() == before


@pytest.mark.parametrize(
    ("method", "properties", "target"),
    [
        ("PUT", {"clientPublicKey": ""}, "properties.clientPublicKey"),
        ("PUT", {"vmId": str(uuid.UUID(int=7))}, "properties.vmId"),
        ("PATCH", {"clientPublicKey": ""}, "properties.clientPublicKey"),
        ("PATCH", {"clientPublicKey": identity.public_key_b64(KEY_B)}, "properties.clientPublicKey"),
        ("PATCH", {"vmId": str(uuid.UUID(int=7))}, "properties.vmId"),
    ],
)
def test_the_key_and_vmid_cannot_be_cleared_or_changed_by_put_or_patch(
    onboarded, path, arm, method, properties, target
):
    before = Machine.objects.values().get()
    body = {"properties": properties, **({"location": "westeurope"} if method == "PUT" else {})}
    response = arm.request(method, f"{path}?{API}", body)  # even an Owner
    assert response.status_code == 400, response.content
    error = json.loads(response.content)["error"]
    assert error["code"] == "PropertyChangeNotAllowed" and error["target"] == target
    assert Machine.objects.values().get() == before


def test_putting_back_what_get_returned_keeps_the_identity_and_the_certificate(onboarded, path, arm):
    body = arm.get(f"{path}?{API}").json()
    body["tags"] = {"env": "prod"}
    response = arm.put(f"{path}?{API}", body)
    assert response.status_code == 200, response.content
    machine = Machine.objects.get()
    assert {t.key: t.value for t in machine.tag_set.all()} == {"env": "prod"}
    assert machine.client_public_key == onboarded.client_public_key and machine.vm_id == onboarded.vm_id
    assert machine.certificate_thumbprint == onboarded.certificate_thumbprint
    assert machine.provisioning_state == "Succeeded"


def test_the_holder_of_the_current_key_re_attaches_with_a_proof(onboarded, path, sp_token, caplog, now):
    from machines.services import machine_record_heartbeat

    machine_record_heartbeat(machine_id=onboarded.pk, at=now)
    token, principal = sp_token(ONBOARDING)  # a new token (another principal, even): the key is what counts
    body = registration(KEY_B)
    with caplog.at_level(logging.INFO, logger="machines.services"):
        response = put_with_proof(ArmClient(token), path, body, KEY_A)
    assert response.status_code == 200, response.content
    machine = Machine.objects.get()
    assert machine.pk == onboarded.pk and machine.client_public_key == identity.public_key_b64(KEY_B)
    assert str(machine.vm_id) == body["properties"]["vmId"]
    assert machine.certificate_thumbprint == "" and machine.provisioning_state == "Creating"
    assert machine.onboarded_by == str(principal.client_id)
    assert MachineStatusEvent.objects.filter(machine=machine).count() == 1  # its history is kept
    assert any("re-attached" in r.getMessage() and "proof" in r.getMessage() for r in caplog.records)


def test_a_proof_by_another_key_is_refused_as_a_name_conflict(onboarded, path, sp_token):
    token, _ = sp_token(ONBOARDING)
    before = Machine.objects.values().get()
    response = put_with_proof(ArmClient(token), path, registration(KEY_B), KEY_B)
    assert response.status_code == 409 and error_code(response) == "ResourceExists"
    assert Machine.objects.values().get() == before


@pytest.mark.parametrize(
    "tamper",
    ["other_body", "other_path", "other_method", "expired", "not_yet_valid", "long_lived", "no_typ", "hs256"],
)
def test_a_proof_that_is_not_bound_to_this_request_is_refused(onboarded, path, sp_token, subscription, tamper):
    token, _ = sp_token(ONBOARDING)
    client = ArmClient(token)
    body = registration(KEY_B)
    raw = json.dumps(body).encode()
    now = int(time.time())
    if tamper == "other_body":  # a proof made for another new key can't carry this one
        proof = key_proof(KEY_A, path=path, body=json.dumps(registration(identity.new_key())).encode())
    elif tamper == "other_path":
        proof = key_proof(KEY_A, path=machine_path(subscription, "arc", "web-02"), body=raw)
    elif tamper == "other_method":
        proof = key_proof(KEY_A, path=path, body=raw, method="PATCH")
    elif tamper == "expired":
        proof = key_proof(KEY_A, path=path, body=raw, issued=now - 900)
    elif tamper == "not_yet_valid":
        proof = key_proof(KEY_A, path=path, body=raw, issued=now + 900)
    elif tamper == "long_lived":
        proof = key_proof(KEY_A, path=path, body=raw, exp=now + 3600)
    elif tamper == "no_typ":
        claims = {"iat": now, "exp": now + 60, "htm": "PUT", "htu": path, "bodySha256": b64url_sha256(raw)}
        proof = jwt.encode(claims, KEY_A, algorithm="RS256")
    else:
        proof = jwt.encode({"htm": "PUT"}, "a-shared-secret-of-at-least-32-bytes!!", algorithm="HS256")
    before = Machine.objects.values().get()
    response = client.request("PUT", f"{path}?{API}", raw=raw, **{PROOF_HEADER: proof})
    assert response.status_code in (400, 409), response.content
    assert error_code(response) in ("InvalidKeyProof", "ResourceExists")
    assert Machine.objects.values().get() == before


def test_only_a_principal_allowed_to_delete_frees_the_name_and_the_delete_is_logged(onboarded, path, sp_token, caplog):
    onboarding_token, _ = sp_token(ONBOARDING)
    onboarder = ArmClient(onboarding_token)
    assert onboarder.delete(f"{path}?{API}").status_code == 403
    assert Machine.objects.filter(pk=onboarded.pk).exists()

    contributor_token, contributor = sp_token("Contributor")
    with caplog.at_level(logging.INFO, logger="machines.services"):
        assert ArmClient(contributor_token).delete(f"{path}?{API}").status_code == 204
    deleted = [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()]
    assert any(str(contributor.client_id) in line and onboarded.arm_id in line for line in deleted), deleted

    response = onboarder.put(f"{path}?{API}", registration(KEY_B))
    assert response.status_code == 200, response.content
    assert Machine.objects.get().client_public_key == identity.public_key_b64(KEY_B)


def test_a_placeholder_without_a_key_is_still_adopted_by_the_first_agent(path, arm, sp_token):
    assert arm.put(f"{path}?{API}", {"location": "westeurope"}).status_code == 200
    token, _ = sp_token(ONBOARDING)
    response = ArmClient(token).put(f"{path}?{API}", registration(KEY_A))
    assert response.status_code == 200, response.content
    assert Machine.objects.get().client_public_key == identity.public_key_b64(KEY_A)


def test_deleting_the_resource_group_is_logged_with_who_did_it(onboarded, subscription, sp_token, caplog):
    token, owner = sp_token("Owner")
    with caplog.at_level(logging.INFO, logger="machines.services"):
        assert ArmClient(token).delete(f"{rg_path(subscription, 'arc')}?{RG_API}").status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    assert any("resource group" in line and str(owner.client_id) in line and "1 machines" in line for line in lines)
    assert not Machine.objects.exists()
