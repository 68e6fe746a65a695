"""``POST /his/machines/{vmId}/heartbeat``: signed by the machine key; every forgery is refused, state untouched."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import pytest
from azcmagent import identity
from django.utils import timezone

from machines.models import Machine, MachineStatusEvent
from machines.services import machine_issue_certificate, machine_register, resource_group_create

pytestmark = pytest.mark.django_db

BODY = {
    "agentVersion": "1.50.0",
    "osName": "linux",
    "osVersion": "6.1.0",
    "osSku": "Debian GNU/Linux 12 (bookworm)",
    "computerName": "web-01",
    "fqdn": "web-01.contoso.local",
    "domainName": "contoso.local",
    "detectedProperties": {"manufacturer": "Contoso", "model": "X1", "processorCount": "8"},
}


@pytest.fixture
def onboarded(subscription):
    """A registered machine with its certificate, and the agent's key: what ``connect`` leaves behind."""
    group = resource_group_create(subscription=subscription, name="rg", location="westeurope")
    key = identity.new_key()
    vm_id = str(uuid.uuid4())
    result = machine_register(
        resource_group=group,
        name="web-01",
        location="westeurope",
        properties={"vmId": vm_id, "vmUuid": "HW-1", "clientPublicKey": identity.public_key_b64(key)},
        onboarding_method="ServicePrincipal",
        onboarded_by="app",
    )
    issued = machine_issue_certificate(machine_id=result.instance.pk, public_key_b64=identity.public_key_b64(key))
    return Machine.objects.get(pk=result.instance.pk), key, issued.thumbprint


def _snapshot(machine_id):
    row = Machine.objects.values().get(pk=machine_id)
    return row, MachineStatusEvent.objects.filter(machine_id=machine_id).count()


def _post(client, vm_id, body: bytes, token: str):
    return client.post(
        f"/his/machines/{vm_id}/heartbeat",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_a_signed_heartbeat_connects_the_machine_at_once_and_records_facts(client, onboarded, settings):
    settings.ARC_HEARTBEAT_INTERVAL_SECONDS = 42
    machine, key, thumbprint = onboarded
    body = json.dumps(BODY).encode()
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "Connected", "nextHeartbeatSeconds": 42}
    machine.refresh_from_db()
    assert machine.status == "Connected" and machine.last_heartbeat_at is not None
    assert machine.os_sku == "Debian GNU/Linux 12 (bookworm)" and machine.computer_name == "web-01"
    assert machine.machine_fqdn == "web-01.contoso.local" and machine.domain_name == "contoso.local"
    assert machine.detected_properties["manufacturer"] == "Contoso"
    event = MachineStatusEvent.objects.get(machine=machine)
    assert (event.from_status, event.to_status) == ("AwaitingConnection", "Connected")


def _forge(case, machine, key, thumbprint):
    """(body, token) for one kind of forgery."""
    vm_id = str(machine.vm_id)
    body = json.dumps(BODY).encode()
    if case == "wrong_key":
        return body, identity.heartbeat_token(identity.new_key(), thumbprint=thumbprint, vm_id=vm_id, body=body)
    if case == "tampered_body":
        token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body)
        return body.replace(b"1.50.0", b"9.99.9"), token
    if case == "expired":
        past = time.time() - 600
        return body, identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body, now=past)
    if case == "too_long_lived":
        return body, identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body, lifetime=3600)
    if case == "unknown_thumbprint":
        return body, identity.heartbeat_token(key, thumbprint="AB" * 20, vm_id=vm_id, body=body)
    if case == "other_machine":
        return body, identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(uuid.uuid4()), body=body)
    if case == "not_a_jwt":
        return body, "not-a-jwt"
    if case == "hs256":
        import jwt

        claims = {"sub": vm_id, "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "x"}
        header = {"x5t": base64.urlsafe_b64encode(bytes.fromhex(thumbprint)).rstrip(b"=").decode()}
        return body, jwt.encode(claims, "secret-key-that-is-long-enough-32b", algorithm="HS256", headers=header)
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_key", "InvalidSignature"),
        ("tampered_body", "BodyMismatch"),
        ("expired", "TokenExpired"),
        ("too_long_lived", "TokenLifetimeTooLong"),
        ("unknown_thumbprint", "UnknownThumbprint"),
        ("other_machine", "InvalidToken"),
        ("not_a_jwt", "InvalidToken"),
        ("hs256", "InvalidToken"),
    ],
)
def test_a_forged_heartbeat_is_refused_with_401_and_changes_nothing(client, onboarded, case, code):
    machine, key, thumbprint = onboarded
    before = _snapshot(machine.pk)
    body, token = _forge(case, machine, key, thumbprint)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == code
    assert _snapshot(machine.pk) == before


def test_a_replayed_heartbeat_is_refused(client, onboarded):
    machine, key, thumbprint = onboarded
    body = json.dumps(BODY).encode()
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)
    assert _post(client, machine.vm_id, body, token).status_code == 200
    before = _snapshot(machine.pk)
    replay = _post(client, machine.vm_id, body, token)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "ReplayedToken"
    assert _snapshot(machine.pk) == before


def test_a_missing_token_is_401(client, onboarded):
    machine, _, _ = onboarded
    response = client.post(f"/his/machines/{machine.vm_id}/heartbeat", data=b"{}", content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidToken"


def test_a_deleted_machine_gets_410(client, onboarded):
    from machines.services import machine_delete

    machine, key, thumbprint = onboarded
    vm_id = str(machine.vm_id)
    machine_delete(machine=machine)
    body = json.dumps(BODY).encode()
    response = _post(client, vm_id, body, identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body))
    assert response.status_code == 410 and response.json()["error"]["code"] == "MachineDeleted"


def test_an_expired_certificate_is_403_expired(client, onboarded):
    machine, key, thumbprint = onboarded
    Machine.objects.filter(pk=machine.pk).update(certificate_expires_at=timezone.now() - timedelta(minutes=1))
    before = _snapshot(machine.pk)
    body = json.dumps(BODY).encode()
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 403 and response.json()["error"]["code"] == "Expired"
    assert _snapshot(machine.pk) == before


def test_the_old_identity_stops_working_when_the_machine_is_re_attached(client, onboarded):
    machine, old_key, old_thumbprint = onboarded
    new_key = identity.new_key()
    machine_register(
        resource_group=machine.resource_group,
        name="web-01",
        location="westeurope",
        properties={"vmId": str(machine.vm_id), "vmUuid": "hw-1", "clientPublicKey": identity.public_key_b64(new_key)},
    )
    body = json.dumps(BODY).encode()
    token = identity.heartbeat_token(old_key, thumbprint=old_thumbprint, vm_id=str(machine.vm_id), body=body)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 401 and response.json()["error"]["code"] == "UnknownThumbprint"
