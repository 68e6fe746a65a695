"""The heartbeat write path (machines/heartbeats.py): Redis buffer, bulk flush, direct writes, faults.

Every behaviour runs against a real Redis when ``REDIS_URL`` is set (CI: db 15; locally e.g.
``REDIS_URL=redis://127.0.0.1:6379/12``) and against an in-process fake otherwise, so the tests always run. The
fake implements the four Lua scripts in Python; the real Redis runs the Lua itself. "Redis down" is a client
pointed at a closed port (127.0.0.1:1): the machine's Redis is never stopped.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta

import pytest
import redis
from azcmagent import identity
from django.utils import timezone

from machines import heartbeat_replay, heartbeats
from machines import status as rules
from machines.models import HeartbeatNonce, Machine, MachineStatusEvent
from machines.services import (
    machine_issue_certificate,
    machine_record_heartbeat,
    machine_register,
    machine_status_sweep,
    resource_group_create,
)
from machines.tasks import machine_heartbeat_flush_task, machine_status_sweep_task
from tests.machines.factories import MachineFactory

pytestmark = pytest.mark.django_db

REAL_REDIS_URL = os.environ.get("REDIS_URL", "")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
FAKE_URL = "redis://fake.invalid:6379/0"


# --- A fake Redis for runs without one ------------------------------------------------------------------------


class FakeRedis:
    """The few commands the write path uses, with the Lua scripts' semantics (``heartbeats._ACCEPT`` …)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.strings: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}

    # commands
    def hset(self, key, field, value):
        self.hashes.setdefault(key, {})[field] = value

    def set(self, key, value, nx=False, px=None, ex=None):
        if nx and key in self.strings:
            return None
        self.strings[key] = value
        return True

    def lpush(self, key, *values):
        self.lists.setdefault(key, [])[:0] = list(reversed(values))

    def ltrim(self, key, start, end):
        self.lists[key] = self.lists.get(key, [])[start : end + 1]

    def lrange(self, key, start, end):
        return self.lists.get(key, [])[start : None if end == -1 else end + 1]

    def pipeline(self, transaction=False):
        return FakePipeline(self)

    # scripts
    def accept(self, keys, args):
        nonce, pending, lease, outage = keys
        ttl, buffer, field, entry, _lease_ms, iat, checked, skew, margin = args
        record = self.hashes.get(outage, {})
        if iat != "" and not checked:
            if "start" in record and int(iat) < int(record["start"]) + skew:
                return -4
            if "end" in record and int(iat) < int(record["end"]) + margin:
                return -3
        if ttl and not self.set(nonce, "1", nx=True, ex=ttl):
            return -1
        if not buffer:
            return 0
        self.hset(pending, str(field), entry)
        return 1 if self.set(lease, "1", nx=True) else 0

    def drain(self, keys, args):
        pending, processing, generation, lease = keys
        self.strings[lease] = "1"
        if pending not in self.hashes and processing not in self.hashes:
            return [0, []]
        if pending in self.hashes:
            self.hashes.setdefault(processing, {}).update(self.hashes.pop(pending))
        self.strings[generation] = str(int(self.strings.get(generation, "0")) + 1)
        flat = [x for item in self.hashes[processing].items() for x in item]
        return [int(self.strings[generation]), flat]

    def outage_merge(self, keys, args):
        record = self.hashes.setdefault(keys[0], {})
        start, end, _ttl = args
        if start != "" and ("start" not in record or int(start) < int(record["start"])):
            record["start"] = str(start)
        if "end" not in record or int(end) > int(record["end"]):
            record["end"] = str(end)
        return 1

    def finish(self, keys, args):
        processing, generation = keys
        if self.strings.get(generation) == str(args[0]):
            self.hashes.pop(processing, None)
            return 1
        return 0

    def finish_fields(self, keys, args):
        entries = self.hashes.get(keys[0], {})
        removed = 0
        for field, value in zip(args[::2], args[1::2], strict=True):
            if entries.get(field) == value:
                del entries[field]
                removed += 1
        if not entries:
            self.hashes.pop(keys[0], None)
        return removed


class FakePipeline:
    def __init__(self, fake: FakeRedis) -> None:
        self.fake, self.calls = fake, []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def execute(self):
        return [getattr(self.fake, name)(*args, **kwargs) for name, args, kwargs in self.calls]


class Buffer:
    """What a test sees of the Redis side: the pending and processing hashes."""

    def __init__(self, kind: str, client) -> None:
        self.kind, self.client = kind, client

    def _hash(self, key: str) -> dict[str, str]:
        if isinstance(self.client, FakeRedis):
            return dict(self.client.hashes.get(key, {}))
        return self.client.hgetall(key)

    def pending(self) -> dict[int, dict]:
        return {int(k): json.loads(v) for k, v in self._hash(heartbeats._keys().pending).items()}

    def processing(self) -> dict[int, dict]:
        return {int(k): json.loads(v) for k, v in self._hash(heartbeats._keys().processing).items()}

    def drop_lease(self) -> None:
        if isinstance(self.client, FakeRedis):
            self.client.strings.pop(heartbeats._keys().lease, None)
        else:
            self.client.delete(heartbeats._keys().lease)

    def forget_claims(self) -> None:
        """What a Redis restart without persistence does to the replay check: every jti claim is gone."""
        prefix = heartbeats._keys().base + "jti:"
        if isinstance(self.client, FakeRedis):
            for key in [k for k in self.client.strings if k.startswith(prefix)]:
                del self.client.strings[key]
        else:
            for key in self.client.scan_iter(match=prefix + "*"):
                self.client.delete(key)

    def dead(self) -> list[dict]:
        return [json.loads(item) for item in self.client.lrange(heartbeats._keys().dead, 0, -1)]

    def clear(self) -> None:
        keys = heartbeats._keys()
        if isinstance(self.client, FakeRedis):
            self.client.hashes.clear()
            self.client.strings.clear()
            self.client.lists.clear()
        else:
            self.client.delete(keys.pending, keys.processing, keys.generation, keys.lease, keys.outage, keys.dead)


@pytest.fixture(
    params=[
        "fake",
        pytest.param(
            "redis", marks=pytest.mark.skipif(not REAL_REDIS_URL, reason="REDIS_URL not set: the fake Redis runs")
        ),
    ]
)
def buffer(request, settings, monkeypatch):
    """Buffering on, a flush interval long enough that no inline flush fires unless a test clears the lease."""
    settings.ARC_HEARTBEAT_FLUSH_SECONDS = 60
    monkeypatch.setattr(heartbeats, "_down_until", {})
    monkeypatch.setattr(heartbeat_replay, "_outage_began", {})
    monkeypatch.setattr(heartbeat_replay, "_published_end", {})
    if request.param == "fake":
        settings.REDIS_URL = FAKE_URL
        fake = FakeRedis()
        real_client = heartbeats._client
        monkeypatch.setattr(
            heartbeats,
            "_client",
            lambda url: (
                heartbeats._Redis(fake, fake.drain, fake.finish, fake.finish_fields, fake.accept, fake.outage_merge)
                if url == FAKE_URL
                else real_client(url)
            ),
        )
        buf = Buffer("fake", fake)
    else:
        settings.REDIS_URL = REAL_REDIS_URL
        buf = Buffer("redis", redis.Redis.from_url(REAL_REDIS_URL, decode_responses=True))
    buf.clear()
    heartbeats.heartbeat_flush()  # takes the lease: the next flush is beat's (or the test's)
    yield buf
    buf.clear()


def connected(**kwargs) -> Machine:
    kwargs.setdefault("last_heartbeat_at", timezone.now() - timedelta(minutes=5))
    return MachineFactory(status=rules.CONNECTED, **kwargs)


def ingest(machine: Machine, at, facts=None) -> str:
    return heartbeats.heartbeat_ingest(
        machine_id=machine.pk, recorded_status=machine.status, at=at, facts=facts or {}, known=machine
    )


def stored(machine: Machine) -> Machine:
    return Machine.objects.get(pk=machine.pk)


# --- Fast path and direct path --------------------------------------------------------------------------------


def test_a_steady_heartbeat_goes_to_redis_without_a_query(buffer, django_assert_num_queries):
    machine = connected()
    before = machine.last_heartbeat_at
    at = timezone.now()
    with django_assert_num_queries(0):
        assert ingest(machine, at, {"agent_version": machine.agent_version}) == rules.CONNECTED
    assert stored(machine).last_heartbeat_at == before
    assert buffer.pending() == {machine.pk: {"at": at.isoformat(), "f": {}}}  # unchanged facts are not kept

    assert heartbeats.heartbeat_flush() == 1
    assert stored(machine).last_heartbeat_at == at
    assert buffer.pending() == {} and buffer.processing() == {}


@pytest.mark.parametrize("recorded", [rules.AWAITING, rules.DISCONNECTED, rules.EXPIRED])
def test_a_status_changing_heartbeat_is_written_at_once_with_its_event(buffer, recorded):
    at = timezone.now()
    last = {rules.AWAITING: None, rules.DISCONNECTED: at - timedelta(hours=1), rules.EXPIRED: at - timedelta(days=50)}
    machine = MachineFactory(status=recorded, last_heartbeat_at=last[recorded])
    assert ingest(machine, at) == rules.CONNECTED
    row = stored(machine)
    assert (row.status, row.last_heartbeat_at, row.last_status_change) == (rules.CONNECTED, at, at)
    event = MachineStatusEvent.objects.get(machine=machine)
    assert (event.from_status, event.to_status, event.at, event.reason) == (recorded, rules.CONNECTED, at, "Heartbeat")
    assert buffer.pending() == {}


def test_without_redis_url_every_heartbeat_is_written_directly(settings):
    settings.REDIS_URL = ""
    machine = connected()
    at = timezone.now()
    ingest(machine, at)
    assert stored(machine).last_heartbeat_at == at
    assert heartbeats.heartbeat_flush() == 0


def test_redis_down_means_a_direct_write_and_no_error(settings, monkeypatch):
    settings.REDIS_URL = CLOSED_PORT_URL
    monkeypatch.setattr(heartbeats, "_down_until", {})
    machine = connected()
    at = timezone.now()
    assert ingest(machine, at) == rules.CONNECTED
    assert stored(machine).last_heartbeat_at == at
    assert heartbeats.heartbeat_flush() == 0  # nothing reachable to flush, and no exception
    # The next heartbeat skips Redis for a while instead of timing out on it again.
    later = at + timedelta(seconds=1)
    assert ingest(stored(machine), later) == rules.CONNECTED
    assert stored(machine).last_heartbeat_at == later


def test_when_no_flush_ran_for_an_interval_the_request_flushes_inline(buffer):
    machine = connected()
    buffer.drop_lease()
    at = timezone.now()
    ingest(machine, at)
    assert stored(machine).last_heartbeat_at == at
    assert buffer.pending() == {}


# --- Flush ----------------------------------------------------------------------------------------------------


def test_the_flush_writes_every_pending_heartbeat_in_one_statement(buffer, django_assert_max_num_queries):
    machines = [connected() for _ in range(5)]
    at = timezone.now() - timedelta(seconds=1)
    for i, machine in enumerate(machines):
        ingest(machine, at + timedelta(milliseconds=i), {"agent_version": f"1.6{i}.0"} if i % 2 else {})
    with django_assert_max_num_queries(4) as captured:  # + the savepoint around it, + the fallback claims' horizon
        assert heartbeats.heartbeat_flush() == 5
    writes = [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))]
    assert sum(sql.lstrip().upper().startswith("UPDATE") for sql in writes) == 1
    for i, machine in enumerate(machines):
        row = stored(machine)
        assert row.last_heartbeat_at == at + timedelta(milliseconds=i)
        assert row.agent_version == (f"1.6{i}.0" if i % 2 else machine.agent_version)
        assert (row.os_sku, row.status) == (machine.os_sku, rules.CONNECTED)


def test_the_flush_writes_changed_facts_only(buffer):
    machine = connected(os_version="6.1", detected_properties={"model": "X1"})
    facts = {"os_version": "6.1", "os_sku": "Debian 13", "detected_properties": {"model": "X2"}}
    ingest(machine, timezone.now(), facts)
    assert buffer.pending()[machine.pk]["f"] == {"os_sku": "Debian 13", "detected_properties": {"model": "X2"}}
    heartbeats.heartbeat_flush()
    row = stored(machine)
    assert (row.os_version, row.os_sku, row.detected_properties) == ("6.1", "Debian 13", {"model": "X2"})
    assert row.agent_version == machine.agent_version


def test_the_flush_never_moves_the_heartbeat_backwards(buffer):
    machine = connected()
    older = timezone.now()
    ingest(machine, older, {"agent_version": "0.9.0"})
    newer = older + timedelta(seconds=3)
    machine_record_heartbeat(machine_id=machine.pk, at=newer, facts={})  # e.g. a direct write while Redis blinked
    assert heartbeats.heartbeat_flush() == 1
    row = stored(machine)
    assert row.last_heartbeat_at == newer and row.agent_version == machine.agent_version


def test_a_heartbeat_is_never_recorded_in_the_future(buffer):
    machine = connected()
    now = timezone.now()
    ingest(machine, now + timedelta(minutes=3))  # another web node's clock runs ahead
    heartbeats.heartbeat_flush(now=now)
    assert stored(machine).last_heartbeat_at == now


def test_a_machine_the_sweep_marked_offline_while_its_heartbeat_waited_gets_its_transition(buffer):
    now = timezone.now()
    machine = connected(last_heartbeat_at=now - timedelta(minutes=30))
    ingest(machine, now)
    machine_status_sweep(now=now)  # the service alone: no flush first, as a sweep racing the heartbeat would
    assert stored(machine).status == rules.DISCONNECTED
    assert heartbeats.heartbeat_flush() == 1
    row = stored(machine)
    assert (row.status, row.last_heartbeat_at, row.last_status_change) == (rules.CONNECTED, now, now)
    transitions = list(
        MachineStatusEvent.objects.filter(machine=machine).order_by("at").values_list("to_status", "reason")
    )
    assert transitions == [(rules.DISCONNECTED, "Status sweep"), (rules.CONNECTED, "Heartbeat")]


def test_a_deleted_machine_s_pending_heartbeat_is_dropped(buffer):
    machine = connected()
    ingest(machine, timezone.now())
    Machine.objects.filter(pk=machine.pk).delete()
    assert heartbeats.heartbeat_flush() == 1
    assert buffer.pending() == {} and buffer.processing() == {}


def test_a_flush_that_dies_after_draining_loses_nothing(buffer, monkeypatch):
    first, second = connected(), connected()
    t1 = timezone.now() - timedelta(seconds=10)
    ingest(first, t1)

    def crash(*, rows, **kwargs):
        raise RuntimeError("worker killed mid-flush")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(heartbeats, "heartbeats_write", crash)
        heartbeats.heartbeat_flush()
    assert set(buffer.processing()) == {first.pk} and buffer.pending() == {}
    assert stored(first).last_heartbeat_at != t1

    ingest(second, t1 + timedelta(seconds=1))
    assert heartbeats.heartbeat_flush() == 2  # the leftover first, merged with what came since
    assert stored(first).last_heartbeat_at == t1
    assert stored(second).last_heartbeat_at == t1 + timedelta(seconds=1)
    assert buffer.pending() == {} and buffer.processing() == {}


def test_a_flush_keeps_newer_heartbeats_another_flush_merged_in_meanwhile(buffer, monkeypatch):
    machine = connected()
    t1 = timezone.now() - timedelta(seconds=10)
    t2 = t1 + timedelta(seconds=2)
    ingest(machine, t1)
    real_write = heartbeats.heartbeats_write

    def write_while_another_flush_drains(*, rows, **kwargs):
        ingest(machine, t2)  # a newer heartbeat arrives …
        keys = heartbeats._keys()
        drain = heartbeats._client(heartbeats._redis_url()).drain
        drain(keys=[keys.pending, keys.processing, keys.generation, keys.lease], args=[60000])  # … a 2nd flush dies
        return real_write(rows=rows, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(heartbeats, "heartbeats_write", write_while_another_flush_drains)
        heartbeats.heartbeat_flush()
    assert stored(machine).last_heartbeat_at == t1
    assert buffer.processing()[machine.pk]["at"] == t2.isoformat()  # not deleted by the first flush
    heartbeats.heartbeat_flush()
    assert stored(machine).last_heartbeat_at == t2
    assert buffer.processing() == {}


# --- Scheduling -----------------------------------------------------------------------------------------------


def test_the_sweep_task_flushes_before_it_sweeps(buffer, settings):
    now = timezone.now()
    machine = connected(last_heartbeat_at=now - timedelta(minutes=30))  # Offline by the rule, recorded Connected
    ingest(machine, now)
    machine_status_sweep_task()
    row = stored(machine)
    assert (row.status, row.last_heartbeat_at) == (rules.CONNECTED, now)
    assert not MachineStatusEvent.objects.filter(machine=machine).exists()


def test_the_flush_task_flushes(buffer):
    machine = connected()
    at = timezone.now()
    ingest(machine, at)
    assert machine_heartbeat_flush_task() == 1
    assert stored(machine).last_heartbeat_at == at


def test_beat_schedules_the_flush_with_expiry_only_with_redis(settings):
    from arcportal import settings as project_settings

    entry = project_settings.CELERY_BEAT_SCHEDULE.get("machine-heartbeat-flush")
    if project_settings.REDIS_URL:
        assert entry["task"] == "machines.tasks.machine_heartbeat_flush_task"
        assert entry["schedule"] == entry["options"]["expires"] == project_settings.ARC_HEARTBEAT_FLUSH_SECONDS
    else:
        assert entry is None


# --- Issue 6 fault test: Redis stopped ------------------------------------------------------------------------


@pytest.fixture
def agent_machine(subscription):
    """A registered machine with its certificate and key, recorded Connected (it has heartbeated before)."""
    group = resource_group_create(subscription=subscription, name="rg-hb", location="westeurope")
    key = identity.new_key()
    vm_id = str(uuid.uuid4())
    result = machine_register(
        resource_group=group,
        name="web-hb",
        location="westeurope",
        properties={"vmId": vm_id, "vmUuid": "HW-HB", "clientPublicKey": identity.public_key_b64(key)},
        onboarding_method="ServicePrincipal",
        onboarded_by="app",
    )
    issued = machine_issue_certificate(machine_id=result.instance.pk, public_key_b64=identity.public_key_b64(key))
    machine_record_heartbeat(machine_id=result.instance.pk, at=timezone.now() - timedelta(minutes=5), facts={})
    return Machine.objects.get(pk=result.instance.pk), key, issued.thumbprint


def post_heartbeat(client, machine, key, thumbprint):
    body = json.dumps({"agentVersion": "1.50.0", "osName": "linux"}).encode()
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)
    return client.post(
        f"/his/machines/{machine.vm_id}/heartbeat",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_with_redis_stopped_heartbeats_are_accepted_the_portal_renders_and_the_sweep_catches_up(
    buffer, settings, client, portal_client, agent_machine
):
    machine, key, thumbprint = agent_machine
    waiting = connected(last_heartbeat_at=timezone.now() - timedelta(minutes=24))
    buffered_at = timezone.now()
    ingest(waiting, buffered_at)  # in Redis when it stops
    working_url = settings.REDIS_URL

    settings.REDIS_URL = CLOSED_PORT_URL  # Redis stopped two minutes ago: today's tokens are newer than that
    heartbeat_replay._outage_began[CLOSED_PORT_URL] = time.time() - 120
    before = stored(machine).last_heartbeat_at
    response = post_heartbeat(client, machine, key, thumbprint)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "Connected"
    assert stored(machine).last_heartbeat_at > before  # written directly
    page = portal_client.get("/")
    assert page.status_code == 200 and b"web-hb" in page.content
    assert heartbeats.heartbeat_flush() == 0

    settings.REDIS_URL = working_url  # Redis returns
    machine_status_sweep_task()
    row = stored(waiting)
    assert (row.status, row.last_heartbeat_at) == (rules.CONNECTED, buffered_at)
    assert buffer.pending() == {} and buffer.processing() == {}


def test_the_endpoint_buffers_a_steady_heartbeat_and_the_flush_writes_it(
    buffer, client, agent_machine, django_assert_num_queries
):
    machine, key, thumbprint = agent_machine
    before = stored(machine).last_heartbeat_at
    with django_assert_num_queries(1):  # the machine's row; the jti and the beat go to Redis together
        response = post_heartbeat(client, machine, key, thumbprint)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "Connected"
    row = stored(machine)
    assert (row.last_heartbeat_at, row.agent_version) == (before, machine.agent_version)
    assert buffer.pending()[machine.pk]["f"] == {"agent_version": "1.50.0", "os_name": "linux"}
    assert heartbeats.heartbeat_flush() == 1
    row = stored(machine)
    assert row.last_heartbeat_at > before and (row.agent_version, row.os_name) == ("1.50.0", "linux")


# --- Replay check (the jti) -----------------------------------------------------------------------------------


def test_a_replayed_nonce_buffers_nothing_the_second_time(buffer):
    machine = connected()
    first = timezone.now()
    ingest_once = {
        "machine_id": machine.pk,
        "recorded_status": rules.CONNECTED,
        "nonce": f"vm:{uuid.uuid4()}",
        "nonce_ttl": 60,
    }
    heartbeats.heartbeat_ingest(at=first, **ingest_once)
    with pytest.raises(heartbeats.HeartbeatReplayed):
        heartbeats.heartbeat_ingest(at=first + timedelta(seconds=5), **ingest_once)
    assert buffer.pending()[machine.pk]["at"] == first.isoformat()  # the replay wrote nothing


@pytest.mark.parametrize("recorded", [rules.AWAITING, rules.DISCONNECTED])
def test_a_replayed_nonce_of_a_status_changing_heartbeat_writes_nothing(buffer, recorded):
    machine = MachineFactory(status=recorded, last_heartbeat_at=None if recorded == rules.AWAITING else timezone.now())
    at = timezone.now()
    once = {"machine_id": machine.pk, "nonce": f"vm:{uuid.uuid4()}", "nonce_ttl": 60}
    heartbeats.heartbeat_ingest(recorded_status=recorded, at=at, **once)
    with pytest.raises(heartbeats.HeartbeatReplayed):
        heartbeats.heartbeat_ingest(recorded_status=rules.CONNECTED, at=at + timedelta(seconds=5), **once)
    assert stored(machine).last_heartbeat_at == at and buffer.pending() == {}


@pytest.mark.parametrize("redis_url", ["", CLOSED_PORT_URL], ids=["no-redis", "redis-down"])
def test_without_redis_the_nonce_is_claimed_in_the_database(settings, monkeypatch, redis_url):
    settings.REDIS_URL = redis_url
    monkeypatch.setattr(heartbeats, "_down_until", {})
    machine = connected()
    at = timezone.now()
    once = {"machine_id": machine.pk, "recorded_status": rules.CONNECTED, "nonce": "vm:jti-3", "nonce_ttl": 90}
    heartbeats.heartbeat_ingest(at=at, **once)
    with pytest.raises(heartbeats.HeartbeatReplayed):
        heartbeats.heartbeat_ingest(at=at + timedelta(seconds=5), **once)
    assert stored(machine).last_heartbeat_at == at  # the replay's write was rolled back with its claim
    nonce = HeartbeatNonce.objects.get()
    assert (nonce.key, nonce.expires_at) == ("vm:jti-3", at + timedelta(seconds=90))


def test_a_long_nonce_is_stored_as_its_hash(settings):
    settings.REDIS_URL = ""
    machine = connected()
    nonce = "vm:" + "j" * 500
    heartbeats.heartbeat_ingest(machine_id=machine.pk, recorded_status=rules.CONNECTED, at=timezone.now(), nonce=nonce)
    assert HeartbeatNonce.objects.get().key.startswith("sha256:")
    with pytest.raises(heartbeats.HeartbeatReplayed):
        heartbeats.heartbeat_ingest(
            machine_id=machine.pk, recorded_status=rules.CONNECTED, at=timezone.now(), nonce=nonce
        )


def test_the_sweep_task_purges_expired_database_nonces(settings):
    settings.REDIS_URL = ""
    now = timezone.now()
    HeartbeatNonce.objects.create(key="old", expires_at=now - timedelta(seconds=1))
    HeartbeatNonce.objects.create(key="live", expires_at=now + timedelta(minutes=5))
    machine_status_sweep_task()
    assert list(HeartbeatNonce.objects.values_list("key", flat=True)) == ["live"]


def test_with_redis_and_its_cache_down_a_heartbeat_is_accepted_and_a_replay_refused(redis_down, client, agent_machine):
    """Production with Redis stopped (two minutes ago): REDIS_URL and the Django cache both point at a Redis that
    does not answer."""
    heartbeat_replay._outage_began[redis_down] = time.time() - 120
    machine, key, thumbprint = agent_machine
    body = json.dumps({"agentVersion": "1.51.0"}).encode()
    token = identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body)

    def post():
        return client.post(
            f"/his/machines/{machine.vm_id}/heartbeat",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    accepted = post()
    assert accepted.status_code == 200, accepted.content
    written = stored(machine)
    assert written.agent_version == "1.51.0"
    replay = post()
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "ReplayedToken"
    assert stored(machine).last_heartbeat_at == written.last_heartbeat_at


def test_a_forked_child_does_not_inherit_the_redis_connection():
    heartbeats._client("redis://127.0.0.1:6379/0")  # lazily connected: creating it opens nothing
    assert heartbeats._clients
    pid = os.fork()
    if pid == 0:  # the child: gunicorn and Celery prefork workers are forked like this
        os._exit(0 if not heartbeats._clients else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert heartbeats._clients  # the parent keeps its own
