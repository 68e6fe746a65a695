"""The status sweep on a fixed clock: exact transitions, event times, counts, idempotence, faults, overlap."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from machines import status as rules
from machines import sweep
from machines.models import Machine, MachineStatusEvent, WebhookDelivery
from machines.selectors import machine_is_expired
from machines.services import machine_record_heartbeat, machine_status_sweep, transitions
from machines.tasks import webhook_deliver_task
from machines.webhooks import webhook_create
from tests.machines.factories import MachineFactory, ResourceGroupFactory

OFFLINE = timedelta(seconds=1500)
EXPIRED = timedelta(days=45)

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the single-statement path needs PostgreSQL (CI runs it there)"
)


@pytest.fixture(params=["orm", pytest.param("sql", marks=needs_postgresql)])
def sweep_path(request, monkeypatch):
    """Run the sweep through one chunk implementation; both must give identical results."""
    impl = {"orm": transitions.sweep_chunk_orm, "sql": transitions.sweep_chunk_sql}[request.param]
    monkeypatch.setattr(transitions, "sweep_chunk", impl)
    return request.param


@pytest.fixture
def fleet(db, now):
    rg = ResourceGroupFactory()

    def make(name, beat, status):
        return MachineFactory(resource_group=rg, name=name, last_heartbeat_at=beat, status=status)

    return {
        "never_seen": make("never-seen", None, rules.AWAITING),
        "fresh": make("fresh", now - timedelta(minutes=1), rules.CONNECTED),
        "at_threshold": make("at-threshold", now - OFFLINE, rules.CONNECTED),
        "just_past": make("just-past", now - OFFLINE - timedelta(seconds=1), rules.CONNECTED),
        "past_expiry": make("past-expiry", now - EXPIRED - timedelta(hours=1), rules.CONNECTED),
        "offline_past_expiry": make("offline-past-expiry", now - EXPIRED - timedelta(days=1), rules.DISCONNECTED),
        "recovering": make("recovering", now - timedelta(seconds=30), rules.DISCONNECTED),
    }


def _events(machine):
    return [
        (e.from_status, e.to_status, e.at, e.reason)
        for e in MachineStatusEvent.objects.filter(machine=machine).order_by("at", "id")
    ]


def test_sweep_records_exactly_the_expected_transitions(fleet, now, sweep_path):
    result = machine_status_sweep(now=now)

    assert result.transitions == {rules.CONNECTED: 1, rules.DISCONNECTED: 2, rules.EXPIRED: 2}
    assert result.total == 5
    assert MachineStatusEvent.objects.count() == 5

    just_past = fleet["just_past"]
    assert _events(just_past) == [
        (rules.CONNECTED, rules.DISCONNECTED, just_past.last_heartbeat_at + OFFLINE, "Status sweep")
    ]
    past = fleet["past_expiry"]
    assert _events(past) == [
        (rules.CONNECTED, rules.DISCONNECTED, past.last_heartbeat_at + OFFLINE, "Status sweep"),
        (rules.DISCONNECTED, rules.EXPIRED, past.last_heartbeat_at + EXPIRED, "Status sweep"),
    ]
    offline = fleet["offline_past_expiry"]
    assert _events(offline) == [
        (rules.DISCONNECTED, rules.EXPIRED, offline.last_heartbeat_at + EXPIRED, "Status sweep")
    ]
    recovering = fleet["recovering"]
    assert _events(recovering) == [(rules.DISCONNECTED, rules.CONNECTED, recovering.last_heartbeat_at, "Status sweep")]
    for key in ("never_seen", "fresh", "at_threshold"):
        assert _events(fleet[key]) == []

    stored = {m.name: (m.status, m.last_status_change) for m in Machine.objects.all()}
    assert stored["never-seen"] == (rules.AWAITING, None)
    assert stored["fresh"] == (rules.CONNECTED, None)
    assert stored["at-threshold"] == (rules.CONNECTED, None)
    assert stored["just-past"] == (rules.DISCONNECTED, just_past.last_heartbeat_at + OFFLINE)
    assert stored["past-expiry"] == (rules.EXPIRED, past.last_heartbeat_at + EXPIRED)
    assert stored["offline-past-expiry"] == (rules.EXPIRED, offline.last_heartbeat_at + EXPIRED)
    assert stored["recovering"] == (rules.CONNECTED, recovering.last_heartbeat_at)


def test_recorded_status_matches_the_derived_status_after_a_sweep(fleet, now, sweep_path):
    from machines.conf import status_thresholds

    machine_status_sweep(now=now)
    thresholds = status_thresholds()
    for machine in Machine.objects.all():
        derived = rules.derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=now, thresholds=thresholds)
        assert machine.status == derived, machine.name


def test_a_second_sweep_changes_nothing(fleet, now, sweep_path):
    machine_status_sweep(now=now)
    before = list(Machine.objects.order_by("pk").values_list("pk", "status", "last_status_change", "updated_at"))

    again = machine_status_sweep(now=now)

    assert again.total == 0
    assert again.transitions == {rules.CONNECTED: 0, rules.DISCONNECTED: 0, rules.EXPIRED: 0}
    assert MachineStatusEvent.objects.count() == 5
    after = list(Machine.objects.order_by("pk").values_list("pk", "status", "last_status_change", "updated_at"))
    assert after == before


def test_sweep_later_records_the_transition_time_not_the_sweep_time(fleet, now, sweep_path):
    machine_status_sweep(now=now)
    fresh = fleet["fresh"]

    machine_status_sweep(now=now + timedelta(hours=5))

    assert _events(fresh) == [(rules.CONNECTED, rules.DISCONNECTED, fresh.last_heartbeat_at + OFFLINE, "Status sweep")]


def test_sweep_processes_every_due_machine_across_chunks(db, now, monkeypatch, sweep_path):
    monkeypatch.setattr("machines.services.transitions.SWEEP_CHUNK", 2)
    rg = ResourceGroupFactory()
    machines = [
        MachineFactory(resource_group=rg, last_heartbeat_at=now - OFFLINE - timedelta(minutes=i + 1)) for i in range(5)
    ]
    Machine.objects.update(status=rules.CONNECTED)

    result = machine_status_sweep(now=now)

    assert result.transitions[rules.DISCONNECTED] == 5
    for machine in machines:
        assert _events(machine) == [
            (rules.CONNECTED, rules.DISCONNECTED, machine.last_heartbeat_at + OFFLINE, "Status sweep")
        ]


def test_both_chunk_implementations_write_identical_rows(transactional_db, now):
    """On PostgreSQL: the CTE and the ORM path, run on twin fleets, leave the same statuses and events."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL has both paths")
    rg = ResourceGroupFactory()
    beats = [now - OFFLINE - timedelta(seconds=1), now - EXPIRED - timedelta(hours=2), now - timedelta(seconds=5)]
    statuses = [rules.CONNECTED, rules.DISCONNECTED, rules.DISCONNECTED]
    results = {}
    for impl in (transitions.sweep_chunk_orm, transitions.sweep_chunk_sql):
        Machine.objects.all().delete()
        for i, (beat, status) in enumerate(zip(beats, statuses, strict=True)):
            MachineFactory(resource_group=rg, name=f"twin-{i}", last_heartbeat_at=beat, status=status)
        from machines.conf import status_thresholds

        for step in sweep.sweep_steps(now=now, thresholds=status_thresholds()):
            with transaction.atomic():
                impl(step, limit=100, recorded_at=now)
        results[impl.__name__] = (
            sorted(Machine.objects.values_list("name", "status", "last_status_change")),
            sorted(MachineStatusEvent.objects.values_list("machine__name", "from_status", "to_status", "at", "reason")),
        )
    assert results["sweep_chunk_orm"] == results["sweep_chunk_sql"]


# --- Faults and overlap ----------------------------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_sweep_killed_in_its_second_chunk_leaves_whole_chunks_and_the_next_sweep_completes(now, monkeypatch):
    monkeypatch.setattr("machines.services.transitions.SWEEP_CHUNK", 2)
    rg = ResourceGroupFactory()
    machines = [
        MachineFactory(resource_group=rg, name=f"m{i}", last_heartbeat_at=now - OFFLINE - timedelta(minutes=1))
        for i in range(5)
    ]
    Machine.objects.update(status=rules.CONNECTED)
    real_chunk = transitions.sweep_chunk
    calls = {"n": 0}

    def crashing_chunk(step, *, limit, recorded_at=None):
        events = real_chunk(step, limit=limit, recorded_at=recorded_at)
        if events:
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash("worker died")  # after the UPDATE and INSERT ran, before the chunk commits
        return events

    monkeypatch.setattr(transitions, "sweep_chunk", crashing_chunk)
    with pytest.raises(Crash):
        machine_status_sweep(now=now)

    for machine in machines:
        machine.refresh_from_db()
    done = [m for m in machines if m.status == rules.DISCONNECTED]
    untouched = [m for m in machines if m.status == rules.CONNECTED]
    assert len(done) == 2  # the first chunk, committed
    assert len(untouched) == 3  # the second chunk rolled back whole, the rest never claimed
    for machine in done:
        assert machine.last_status_change == machine.last_heartbeat_at + OFFLINE
        assert MachineStatusEvent.objects.filter(machine=machine).count() == 1
    for machine in untouched:
        assert machine.last_status_change is None
        assert not MachineStatusEvent.objects.filter(machine=machine).exists()

    monkeypatch.setattr(transitions, "sweep_chunk", real_chunk)
    result = machine_status_sweep(now=now)

    assert result.transitions[rules.DISCONNECTED] == 3
    for machine in machines:
        machine.refresh_from_db()
        assert machine.status == rules.DISCONNECTED
        assert MachineStatusEvent.objects.filter(machine=machine, to_status=rules.DISCONNECTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_sweeps_record_each_transition_exactly_once(now, monkeypatch):
    monkeypatch.setattr("machines.services.transitions.SWEEP_CHUNK", 7)
    rg = ResourceGroupFactory()
    Machine.objects.bulk_create(
        [
            Machine(
                resource_group=rg,
                name=f"fleet-{i:03d}",
                location="westeurope",
                status=rules.CONNECTED,
                last_heartbeat_at=now - OFFLINE - timedelta(seconds=i + 1),
            )
            for i in range(120)
        ]
    )
    results = []
    errors = []

    def run():
        try:
            results.append(machine_status_sweep(now=now))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    if connection.vendor == "postgresql":
        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    else:  # SQLite serialises writers; overlapping sweeps there are sequential by construction.
        for _ in range(3):
            run()

    assert not errors
    assert sum(r.transitions[rules.DISCONNECTED] for r in results) == 120
    assert MachineStatusEvent.objects.count() == 120
    assert MachineStatusEvent.objects.values("machine").distinct().count() == 120
    assert not Machine.objects.exclude(status=rules.DISCONNECTED).exists()


# --- Notifications and the heartbeat hook -----------------------------------------------------------------


def test_sweep_enqueues_webhook_deliveries_only_after_each_chunk_commits(
    fleet, now, subscription, django_capture_on_commit_callbacks, monkeypatch
):
    rg = fleet["fresh"].resource_group
    webhook_create(subscription=rg.subscription, url="https://hooks.example.test/arc")
    sent = []
    monkeypatch.setattr(webhook_deliver_task, "delay", lambda delivery_id: sent.append(delivery_id))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        machine_status_sweep(now=now)
        assert WebhookDelivery.objects.count() == 5
        assert sent == []

    assert len(callbacks) == 3  # one per chunk that had transitions (Connected, Disconnected, Expired)
    for callback in callbacks:
        callback()
    assert sorted(sent) == sorted(WebhookDelivery.objects.values_list("pk", flat=True))


def test_heartbeat_after_offline_records_the_transition_and_notifies(db, now, django_capture_on_commit_callbacks):
    machine = MachineFactory(last_heartbeat_at=now - timedelta(hours=2), status=rules.DISCONNECTED)
    webhook_create(subscription=machine.resource_group.subscription, url="http://hooks.example.test:9/hook")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        machine_record_heartbeat(machine_id=machine.pk, at=now)

    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["data"]["previousStatus"] == rules.DISCONNECTED
    assert delivery.payload["data"]["status"] == rules.CONNECTED
    assert delivery.payload["data"]["statusChangedAt"] == "2026-11-27T12:00:00Z"
    assert len(callbacks) == 1


def test_heartbeat_on_a_connected_machine_notifies_nobody(db, now, django_capture_on_commit_callbacks):
    machine = MachineFactory(last_heartbeat_at=now - timedelta(minutes=5), status=rules.CONNECTED)
    webhook_create(subscription=machine.resource_group.subscription, url="http://hooks.example.test:9/hook")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        machine_record_heartbeat(machine_id=machine.pk, at=now)

    assert callbacks == []
    assert not WebhookDelivery.objects.exists()


# --- Expired ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        (None, False),
        (timedelta(minutes=1), False),
        (EXPIRED, False),
        (EXPIRED + timedelta(microseconds=1), True),
        (timedelta(days=400), True),
    ],
)
def test_machine_is_expired_after_the_expiry_threshold(db, now, age, expired):
    machine = MachineFactory.build(last_heartbeat_at=None if age is None else now - age)
    assert machine_is_expired(last_heartbeat_at=machine.last_heartbeat_at, now=now) is expired
