"""Issue 10, item 4: one agent's heartbeat can't stop the fleet's.

A heartbeat carrying text no database can store used to be answered 200 and buffered; the bulk flush then failed on
the whole batch for ever, and the sweep (which flushes first) died with it. Now the agent plane refuses such text
(400), the flush isolates and dead-letters any row the database still refuses, and a failing flush never skips the
sweep. Runs on the real Redis when ``REDIS_URL`` is set (CI's PostgreSQL + Redis run), on the fake one otherwise.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from azcmagent import identity
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from machines import heartbeats
from machines import status as rules
from machines.models import Machine, MachineStatusEvent
from machines.services import machine_issue_certificate, machine_record_heartbeat, machine_register
from machines.tasks import machine_status_sweep_task
from tests.machines.test_heartbeats import agent_machine, buffer, connected, ingest, stored  # noqa: F401

pytestmark = pytest.mark.django_db

FACT_KEYS = ["agentVersion", "osName", "osSku", "osVersion", "computerName", "domainName", "fqdn", "dnsFqdn"]

# Any code point, lone surrogates and NUL included (json.dumps escapes surrogates as \ud800, as an agent could).
any_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=40)
hostile_text = st.one_of(
    any_text,
    any_text.map(lambda s: s + "\x00"),
    any_text.map(lambda s: "\ud800" + s),
    st.integers(200, 70_000).map(lambda n: "x" * n),
    st.integers(200, 5_000).map(lambda n: "\x00" * n),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
fact_bodies = st.dictionaries(
    st.sampled_from([*FACT_KEYS, "detectedProperties"]),
    st.one_of(hostile_text, json_values, st.dictionaries(hostile_text, hostile_text, max_size=4)),
    max_size=6,
).map(lambda body: json.dumps(body).encode())
deep_bodies = st.integers(5, 6_000).map(lambda n: ("[" * n + "]" * n).encode()) | st.integers(5, 6_000).map(
    lambda n: ('{"detectedProperties":' * n + "1" + "}" * n).encode()
)
other_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),  # wrong types at the top: arrays, strings, numbers
    st.binary(max_size=200),  # not JSON, not UTF-8
    st.just(b'{"osSku": "' + b"\xed\xa0\x80" + b'"}'),  # a surrogate encoded as raw UTF-8 bytes
)
heartbeat_bodies = st.one_of(fact_bodies, deep_bodies, other_bodies)


def _post(client, machine, key, thumbprint, body: bytes):
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)
    return client.post(
        f"/his/machines/{machine.vm_id}/heartbeat",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.fixture
def bystander(agent_machine):  # noqa: F811
    """Another registered machine with its key and certificate, Connected: its heartbeats must keep landing."""
    from machines.models import ResourceGroup

    group = ResourceGroup.objects.get(name="rg-hb")
    key = identity.new_key()
    result = machine_register(
        resource_group=group,
        name="web-bystander",
        location="westeurope",
        properties={"vmId": str(uuid.uuid4()), "vmUuid": "HW-BY", "clientPublicKey": identity.public_key_b64(key)},
        onboarding_method="ServicePrincipal",
        onboarded_by="app",
    )
    issued = machine_issue_certificate(machine_id=result.instance.pk, public_key_b64=identity.public_key_b64(key))
    machine_record_heartbeat(machine_id=result.instance.pk, at=timezone.now() - timedelta(minutes=5), facts={})
    return Machine.objects.get(pk=result.instance.pk), key, issued.thumbprint


def test_hostile_heartbeat_bodies_never_block_the_flush_the_sweep_or_other_machines(
    buffer,  # noqa: F811
    client,
    agent_machine,  # noqa: F811
    bystander,
):
    machine, key, thumbprint = agent_machine
    statuses: set[int] = set()

    @given(body=heartbeat_bodies)
    @settings(
        max_examples=80,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def hostile(body: bytes):
        response = _post(client, machine, key, thumbprint, body)
        statuses.add(response.status_code)
        assert response.status_code in (200, 400, 413), (response.status_code, response.content[:300], body[:200])
        if response.status_code != 200:
            assert response.json()["error"]["code"] in ("InvalidRequestContent", "BodyTooLarge")
        heartbeats.heartbeat_flush()  # beat's flush, after every beat: it must never raise
        assert buffer.pending() == {} and buffer.processing() == {}

    hostile()
    assert {200, 400} <= statuses  # both accepted and refused bodies were generated

    # A machine of the fleet gone quiet 30 minutes ago: the sweep must still run and record it Offline.
    quiet = connected(last_heartbeat_at=timezone.now() - timedelta(minutes=30))
    other, other_key, other_thumbprint = bystander
    before = stored(other).last_heartbeat_at
    good = _post(client, other, other_key, other_thumbprint, json.dumps({"agentVersion": "1.52.0"}).encode())
    assert good.status_code == 200, good.content
    machine_status_sweep_task()
    row = stored(other)
    assert row.last_heartbeat_at > before and row.agent_version == "1.52.0"
    assert stored(quiet).status == rules.DISCONNECTED
    assert MachineStatusEvent.objects.filter(machine=quiet, to_status=rules.DISCONNECTED).exists()


def _write_directly(buf, field: str, value: str) -> None:
    """Into the pending hash, as a bug or anyone with access to Redis could: no validation on the way."""
    buf.client.hset(heartbeats._keys().pending, field, value)


def test_a_poisoned_row_in_the_buffer_is_dead_lettered_and_the_rest_of_the_batch_lands(buffer):  # noqa: F811
    good = [connected() for _ in range(3)]
    poisoned = [connected() for _ in range(4)]
    at = timezone.now() - timedelta(seconds=1)
    for machine in good:
        ingest(machine, at, {"agent_version": "1.53.0"})
    stamp = at.isoformat()
    entries = {
        poisoned[0]: json.dumps({"at": stamp, "f": {"os_sku": "Debian\x0013"}}),  # NUL: PostgreSQL refuses it
        poisoned[1]: json.dumps({"at": stamp, "f": {"detected_properties": {"model": "\ud800"}}}),  # lone surrogate
        poisoned[2]: '{"at": "not a time", "f": {}',  # not even JSON
        # Valid text the column can't hold (varchar(200)): only the database notices; bisection isolates it.
        poisoned[3]: json.dumps({"at": stamp, "f": {"os_sku": "x" * 3000}}),
    }
    for machine, value in entries.items():
        _write_directly(buffer, str(machine.pk), value)

    heartbeats.heartbeat_flush()  # must not raise

    for machine in good:
        row = stored(machine)
        assert (row.last_heartbeat_at, row.agent_version) == (at, "1.53.0")
    for machine in poisoned[:3]:
        assert stored(machine).last_heartbeat_at == machine.last_heartbeat_at
    dead = {item["machine"]: item for item in buffer.dead()}
    assert {str(m.pk) for m in poisoned[:3]} <= set(dead)
    assert dead[str(poisoned[0].pk)]["reason"].startswith("refused text")
    assert dead[str(poisoned[2].pk)]["reason"].startswith("malformed")
    if connection.vendor == "postgresql":
        assert str(poisoned[3].pk) in dead and "DataError" in dead[str(poisoned[3].pk)]["reason"]
        assert stored(poisoned[3]).os_sku != "x" * 3000
    assert buffer.pending() == {} and buffer.processing() == {}  # not retried for ever

    # The next flush has nothing left to trip on, and new heartbeats flow as before.
    later = at + timedelta(milliseconds=500)
    ingest(stored(good[0]), later)
    assert heartbeats.heartbeat_flush() == 1
    assert stored(good[0]).last_heartbeat_at == later


def test_a_failing_flush_never_skips_the_sweep(buffer, monkeypatch):  # noqa: F811
    quiet = connected(last_heartbeat_at=timezone.now() - timedelta(minutes=30))

    def broken(**kwargs):
        raise RuntimeError("the database went away mid-flush")

    monkeypatch.setattr(heartbeats, "heartbeat_flush", broken)
    monkeypatch.setattr("machines.tasks.heartbeat_flush", broken)
    machine_status_sweep_task()
    assert stored(quiet).status == rules.DISCONNECTED


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"osSku": "Debian\x0013"}).encode(),
        json.dumps({"detectedProperties": {"model": "\ud800"}}).encode(),
        ("[" * 5000 + "]" * 5000).encode(),
    ],
    ids=["nul", "lone-surrogate", "deep"],
)
def test_a_heartbeat_with_text_no_database_can_store_is_a_400_and_buffers_nothing(
    buffer,  # noqa: F811
    client,
    agent_machine,  # noqa: F811
    body,
):
    machine, key, thumbprint = agent_machine
    response = _post(client, machine, key, thumbprint, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    assert buffer.pending() == {}
    assert stored(machine).last_heartbeat_at == machine.last_heartbeat_at
