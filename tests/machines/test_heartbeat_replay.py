"""Issue 10, item 15: a heartbeat token is accepted once, whether Redis answers, fails, or comes back.

The jti is claimed in Redis normally and in the database while Redis is down (``machines/heartbeat_replay.py``).
Each test uses one token twice across a change of mode; "Redis down" is the ``redis_down`` fixture (a closed port),
"Redis back" is the ``buffer`` fixture's Redis (the real one when ``REDIS_URL`` is set, the fake one otherwise).
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from azcmagent import identity

from machines import heartbeat_replay, heartbeats
from machines.models import HeartbeatNonce
from tests.machines.test_heartbeats import agent_machine, buffer, stored  # noqa: F401

pytestmark = pytest.mark.django_db


def _token(machine, key, thumbprint, body: bytes, *, issued: float | None = None) -> str:
    return identity.heartbeat_token(key, thumbprint=thumbprint, vm_id=str(machine.vm_id), body=body, now=issued)


def _post(client, machine, body: bytes, token: str):
    return client.post(
        f"/his/machines/{machine.vm_id}/heartbeat",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


BODY = json.dumps({"agentVersion": "1.54.0"}).encode()


def test_a_token_claimed_in_redis_is_refused_when_replayed_while_redis_is_down(
    buffer,  # noqa: F811
    client,
    agent_machine,  # noqa: F811
    request,
):
    machine, key, thumbprint = agent_machine
    token = _token(machine, key, thumbprint, BODY)
    assert _post(client, machine, BODY, token).status_code == 200  # claimed in Redis, buffered
    heartbeats.heartbeat_flush()
    written = stored(machine).last_heartbeat_at

    request.getfixturevalue("redis_down")  # Redis stops; the database fallback can't see Redis's claims
    replay = _post(client, machine, BODY, token)
    assert replay.status_code == 503, replay.content
    assert replay.json()["error"]["code"] == "ReplayCheckUnavailable" and replay["Retry-After"]
    assert stored(machine).last_heartbeat_at == written  # nothing recorded
    assert not HeartbeatNonce.objects.exists()


def test_during_an_outage_a_fresh_token_is_accepted_once(client, agent_machine, redis_down):  # noqa: F811
    machine, key, thumbprint = agent_machine
    heartbeat_replay._outage_began[redis_down] = time.time() - 120  # Redis stopped two minutes ago
    token = _token(machine, key, thumbprint, BODY)
    assert _post(client, machine, BODY, token).status_code == 200
    replay = _post(client, machine, BODY, token)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "ReplayedToken"


def _outage_then_back(buffer, settings, monkeypatch, client, machine, key, thumbprint):  # noqa: F811
    """Redis (the same URL) stops answering two minutes ago; a beat is accepted through the database; Redis comes
    back and this process's backoff has passed."""
    url, real_client = settings.REDIS_URL, heartbeats._client

    def stopped(u):
        if u == url:
            raise redis.ConnectionError("Redis stopped")
        return real_client(u)

    monkeypatch.setattr(heartbeats, "_client", stopped)
    token = _token(machine, key, thumbprint, BODY, issued=time.time() - 30)
    first = _post(client, machine, BODY, token)
    assert first.status_code == 503, first.content  # issued just before this process saw the outage: can't tell
    heartbeat_replay._outage_began[url] = time.time() - 120  # ... two minutes later, fresh tokens are accepted
    token = _token(machine, key, thumbprint, BODY)
    accepted = _post(client, machine, BODY, token)
    assert accepted.status_code == 200, accepted.content
    assert HeartbeatNonce.objects.filter(in_fallback=True).count() == 1
    monkeypatch.setattr(heartbeats, "_client", real_client)  # Redis returns
    heartbeats._down_until.clear()
    return token


def test_a_token_claimed_in_the_database_is_refused_when_replayed_after_redis_returns(
    buffer,  # noqa: F811
    settings,
    monkeypatch,
    client,
    agent_machine,  # noqa: F811
):
    machine, key, thumbprint = agent_machine
    token = _outage_then_back(buffer, settings, monkeypatch, client, machine, key, thumbprint)
    written = stored(machine).last_heartbeat_at
    replay = _post(client, machine, BODY, token)
    assert replay.status_code == 401, replay.content
    assert replay.json()["error"]["code"] == "ReplayedToken"
    assert stored(machine).last_heartbeat_at == written and buffer.pending() == {}


def test_a_process_that_never_saw_the_outage_learns_it_from_the_flush(
    buffer,  # noqa: F811
    settings,
    monkeypatch,
    client,
    agent_machine,  # noqa: F811
):
    machine, key, thumbprint = agent_machine
    token = _outage_then_back(buffer, settings, monkeypatch, client, machine, key, thumbprint)
    # The replay reaches another web process, which never saw Redis fail: no record from this one.
    monkeypatch.setattr(heartbeat_replay, "recovered", lambda *args: heartbeat_replay._outage_began.clear())
    heartbeats.heartbeat_flush()  # beat's flush publishes the database claims' horizon to Redis
    replay = _post(client, machine, BODY, token)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "ReplayedToken"
    # A fresh token is accepted (checked in the database too, as it was issued close to the outage).
    fresh = _token(machine, key, thumbprint, BODY)
    assert _post(client, machine, BODY, fresh).status_code == 200
    assert HeartbeatNonce.objects.filter(in_fallback=False).count() == 1


def test_a_token_from_before_the_outage_is_refused_if_redis_lost_its_claims(
    buffer,  # noqa: F811
    settings,
    monkeypatch,
    client,
    agent_machine,  # noqa: F811
):
    machine, key, thumbprint = agent_machine
    old = _token(machine, key, thumbprint, BODY, issued=time.time() - 150)
    assert _post(client, machine, BODY, old).status_code == 200  # claimed in Redis before the outage
    _outage_then_back(buffer, settings, monkeypatch, client, machine, key, thumbprint)
    buffer.forget_claims()  # Redis restarted without persistence: its jti claims are gone
    replay = _post(client, machine, BODY, old)
    assert replay.status_code == 503 and replay.json()["error"]["code"] == "ReplayCheckUnavailable"
