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
from tests.agent.test_registration import proof_by

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
        key_proof=proof_by(old_key),
    )
    body = json.dumps(BODY).encode()
    token = identity.heartbeat_token(old_key, thumbprint=old_thumbprint, vm_id=str(machine.vm_id), body=body)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 401 and response.json()["error"]["code"] == "UnknownThumbprint"


# --- Expired machines (issue 6 item 4): refused until the agent connects again ----------------------------------


def _expire(machine_id, days: int = 46):
    last = timezone.now() - timedelta(days=days)
    Machine.objects.filter(pk=machine_id).update(
        status="Expired", last_heartbeat_at=last, last_status_change=last + timedelta(days=45)
    )


def _signed(machine, key, thumbprint, vm_id=None):
    body = json.dumps(BODY).encode()
    vm_id = str(vm_id or machine.vm_id)
    return body, identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=vm_id, body=body)


def test_an_expired_machine_is_refused_with_403_and_changes_nothing(client, onboarded):
    machine, key, thumbprint = onboarded
    _expire(machine.pk)
    before = _snapshot(machine.pk)
    body, token = _signed(machine, key, thumbprint)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "Expired"
    assert _snapshot(machine.pk) == before


def test_a_machine_just_inside_the_expiry_window_is_still_accepted(client, onboarded, settings):
    settings.ARC_EXPIRED_AFTER_DAYS = 45
    machine, key, thumbprint = onboarded
    _expire(machine.pk, days=44)
    Machine.objects.filter(pk=machine.pk).update(status="Disconnected")
    body, token = _signed(machine, key, thumbprint)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 200, response.content
    event = MachineStatusEvent.objects.filter(machine_id=machine.pk).latest("pk")
    assert (event.from_status, event.to_status) == ("Disconnected", "Connected")


def test_an_expired_machine_reconnects_after_re_registration(client, onboarded):
    machine, old_key, old_thumbprint = onboarded
    _expire(machine.pk)
    body, token = _signed(machine, old_key, old_thumbprint)
    assert _post(client, machine.vm_id, body, token).status_code == 403
    # 'azcmagent disconnect --force-local-only' + 'connect' on the same hardware: new key, new vmId, new certificate.
    new_key, new_vm_id = identity.new_key(), str(uuid.uuid4())
    machine_register(
        resource_group=machine.resource_group,
        name="web-01",
        location="westeurope",
        properties={"vmId": new_vm_id, "vmUuid": "HW-1", "clientPublicKey": identity.public_key_b64(new_key)},
        onboarding_method="ServicePrincipal",
        onboarded_by="app",
        key_proof=proof_by(old_key),
    )
    reattached = Machine.objects.get(pk=machine.pk)
    assert reattached.last_heartbeat_at is None and str(reattached.vm_id) == new_vm_id
    issued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=identity.public_key_b64(new_key))
    events_before = MachineStatusEvent.objects.filter(machine_id=machine.pk).count()

    body, token = _signed(reattached, new_key, issued.thumbprint)
    response = _post(client, new_vm_id, body, token)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "Connected"
    reattached.refresh_from_db()
    assert reattached.status == "Connected" and reattached.last_heartbeat_at is not None
    assert MachineStatusEvent.objects.filter(machine_id=machine.pk).count() == events_before + 1
    event = MachineStatusEvent.objects.filter(machine_id=machine.pk).latest("pk")
    assert (event.from_status, event.to_status) == ("Expired", "Connected")
    assert event.reason == "Heartbeat"


def test_a_re_registered_key_is_used_at_once_despite_the_parsed_key_cache(client, onboarded):
    """The old key signs with the new certificate's thumbprint after re-registration: refused, not verified against
    a parsed key cached from before."""
    machine, old_key, old_thumbprint = onboarded
    body, token = _signed(machine, old_key, old_thumbprint)
    assert _post(client, machine.vm_id, body, token).status_code == 200  # the old key is now parsed and cached
    new_key = identity.new_key()
    machine_register(
        resource_group=machine.resource_group,
        name="web-01",
        location="westeurope",
        properties={"vmId": str(machine.vm_id), "vmUuid": "HW-1", "clientPublicKey": identity.public_key_b64(new_key)},
        key_proof=proof_by(old_key),
    )
    issued = machine_issue_certificate(machine_id=machine.pk, public_key_b64=identity.public_key_b64(new_key))
    before = _snapshot(machine.pk)
    body, token = _signed(machine, old_key, issued.thumbprint)
    response = _post(client, machine.vm_id, body, token)
    assert response.status_code == 401 and response.json()["error"]["code"] == "InvalidSignature"
    assert _snapshot(machine.pk) == before
    body, token = _signed(machine, new_key, issued.thumbprint)
    assert _post(client, machine.vm_id, body, token).status_code == 200
