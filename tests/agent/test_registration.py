"""``machines.services.machine_register``: the rules of an agent registering its machine."""

from __future__ import annotations

import uuid

import pytest
from azcmagent import identity

from arcportal.exceptions import Conflict, Invalid
from machines.keyproof import KeyProof
from machines.models import Machine, MachineStatusEvent
from machines.services import (
    machine_create_or_update,
    machine_record_heartbeat,
    machine_register,
    resource_group_create,
)

pytestmark = pytest.mark.django_db

KEY = identity.new_key()


@pytest.fixture
def group(subscription):
    return resource_group_create(subscription=subscription, name="rg", location="westeurope")


def _register(group, *, vm_uuid="HW-1", name="web-01", key=KEY, key_proof=None, **extra):
    properties = {"vmId": str(uuid.uuid4()), "vmUuid": vm_uuid, "clientPublicKey": identity.public_key_b64(key)}
    properties.update(extra)
    return machine_register(
        key_proof=key_proof,
        resource_group=group,
        name=name,
        location="westeurope",
        properties=properties,
        tags={"env": "prod"},
        correlation_id="c0ffee00-0000-4000-8000-000000000000",
        onboarding_method="ServicePrincipal",
        onboarded_by="app-id",
    )


def test_a_new_registration_is_creating_with_key_facts_tags_and_how(group):
    result = _register(group, osName="linux", osSku="Ubuntu 24.04", agentVersion="1.50.0")
    machine = Machine.objects.get(pk=result.instance.pk)
    assert result.created and machine.provisioning_state == "Creating"
    assert machine.client_public_key == identity.public_key_b64(KEY) and machine.vm_uuid == "HW-1"
    assert (machine.os_name, machine.os_sku, machine.agent_version) == ("linux", "Ubuntu 24.04", "1.50.0")
    assert {t.key: t.value for t in machine.tag_set.all()} == {"env": "prod"}
    assert machine.correlation_id == "c0ffee00-0000-4000-8000-000000000000"
    assert (machine.onboarding_method, machine.onboarded_by) == ("ServicePrincipal", "app-id")
    assert machine.status == "AwaitingConnection" and machine.certificate_thumbprint == ""


def test_another_server_under_the_same_name_is_a_conflict_azcm0044(group):
    _register(group)
    before = Machine.objects.values().get()
    with pytest.raises(Conflict) as info:
        _register(group, vm_uuid="HW-2", name="WEB-01", key=identity.new_key())
    assert info.value.code == "ResourceExists" and "AZCM0044" in info.value.message
    assert Machine.objects.values().get() == before


def proof_by(key, *, path: str = "/m", body: bytes = b"{}") -> KeyProof:
    """A proof of possession of ``key`` made by the agent's own code, for the request (``path``, ``body``)."""
    token = identity.key_proof(key, method="PUT", path=path, body=body)
    return KeyProof(token=token, method="PUT", path=path, body=body)


def test_the_holder_of_the_current_key_re_attaches_keeping_history(group, now):
    first = _register(group).instance
    machine_record_heartbeat(machine_id=first.pk, at=now)
    Machine.objects.filter(pk=first.pk).update(certificate_thumbprint="AA" * 20)
    new_key = identity.new_key()
    again = _register(group, key=new_key, key_proof=proof_by(KEY))
    machine = Machine.objects.get()
    assert not again.created and machine.pk == first.pk
    assert machine.vm_id != first.vm_id and machine.client_public_key == identity.public_key_b64(new_key)
    assert machine.certificate_thumbprint == "" and machine.provisioning_state == "Creating"
    assert MachineStatusEvent.objects.filter(machine=machine).count() == 1


def test_the_same_hardware_id_without_a_proof_is_a_conflict(group):
    """The vmUuid is readable by whoever may read the machine: it proves nothing (issue 10 item 5)."""
    _register(group)
    before = Machine.objects.values().get()
    with pytest.raises(Conflict) as info:
        _register(group, key=identity.new_key())  # same vmUuid "HW-1"
    assert info.value.code == "ResourceExists" and "proof" in info.value.message
    with pytest.raises(Conflict):
        _register(group, key=identity.new_key(), key_proof=proof_by(identity.new_key()))  # signed by another key
    assert Machine.objects.values().get() == before


def test_registering_the_same_key_again_changes_no_identity(group):
    first = _register(group).instance
    Machine.objects.filter(pk=first.pk).update(certificate_thumbprint="AA" * 20, provisioning_state="Succeeded")
    again = _register(group, vmId=str(first.vm_id))
    machine = Machine.objects.get()
    assert not again.created and machine.vm_id == first.vm_id
    assert machine.certificate_thumbprint == "AA" * 20 and machine.provisioning_state == "Succeeded"


def test_a_placeholder_created_through_arm_is_adopted(group):
    placeholder = machine_create_or_update(resource_group=group, name="web-01", location="westeurope").instance
    result = _register(group)
    assert not result.created and result.instance.pk == placeholder.pk
    assert Machine.objects.get().client_public_key


@pytest.mark.parametrize(
    "properties",
    [
        {"clientPublicKey": "not base64!"},
        {"clientPublicKey": "QUJD"},
        {"vmId": ""},
    ],
)
def test_bad_registrations_are_invalid(group, properties):
    with pytest.raises(Invalid):
        _register(group, **properties)
    assert not Machine.objects.exists()


def test_a_small_rsa_key_is_refused(group):
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    with pytest.raises(Invalid):
        _register(group, key=weak)
