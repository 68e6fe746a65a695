"""The fleet's counts summary (machines/fleet_counts.py, migration 0013): after every kind of write, with and without
folding, with the clock past the last sweep, the counts it gives are exactly those of the status rule applied to
every machine — and the Machines blade reads them from it."""

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arcportal import authz
from identity.middleware import user_with_grants
from identity.role_assignments import role_assignment_create
from identity.tokens import user_object_id
from machines import status as rules
from machines.conf import status_thresholds
from machines.filters import MachineFilterSet
from machines.fleet_counts import (
    CountScope,
    counts_by_group,
    fleet_counts_clear_if_no_machines,
    fleet_counts_compact,
    fleet_counts_rebuild,
    machine_list_counts,
)
from machines.models import FleetCount, FleetCountDelta, Machine, MachineTag
from machines.selectors import machine_base_queryset, machine_status_counts
from machines.services import machine_status_sweep
from machines.services.transitions import machine_record_heartbeat
from machines.status import derive_status
from tests.machines.factories import MachineFactory, ResourceGroupFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

LOCATIONS = ["westeurope", "eastus", "japaneast"]


def truth(scope: CountScope, *, now) -> dict[int, dict[str, int]]:
    """What the counts must be: the status rule on every machine in Python, filtered in Python."""
    thresholds = status_thresholds()
    group_ids = None
    if scope.groups is not None:
        from machines.models import ResourceGroup

        group_ids = set(ResourceGroup.objects.filter(scope.groups).values_list("pk", flat=True))
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(rules.ALL_STATUSES, 0))
    for machine in Machine.objects.prefetch_related("tag_set"):
        if group_ids is not None and machine.resource_group_id not in group_ids:
            continue
        if scope.location and machine.location != scope.location:
            continue
        if scope.os_name and machine.os_name != scope.os_name:
            continue
        if scope.tag is not None:
            key, value = scope.tag
            tags = {tag.key.lower(): tag.value for tag in machine.tag_set.all()}
            if key.lower() not in tags or (value is not None and tags[key.lower()] != value):
                continue
        status = derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=now, thresholds=thresholds)
        result[machine.resource_group_id][status] += 1
    return dict(result)


def scopes(groups) -> list[CountScope]:
    first, second = groups[0], groups[1]
    return [
        CountScope(),
        CountScope(groups=Q(pk=first.pk)),
        CountScope(groups=Q(subscription=second.subscription_id)),
        CountScope(location="eastus"),
        CountScope(os_name="windows"),
        CountScope(tag=("env", "prod")),
        CountScope(tag=("ENV", None)),
        CountScope(groups=Q(pk__in=[first.pk, second.pk]), location="westeurope", os_name="linux", tag=("team", "a")),
    ]


def assert_exact(groups, *, now) -> None:
    for scope in scopes(groups):
        assert counts_by_group(scope, now=now, thresholds=status_thresholds()) == truth(scope, now=now), scope


def heartbeat(rng, now):
    return rng.choice(
        [
            None,
            now - timedelta(seconds=rng.randint(0, 200)),
            now - timedelta(minutes=rng.randint(30, 600)),
            now - timedelta(days=rng.randint(50, 90)),
        ]
    )


@pytest.fixture
def fleet():
    rng = random.Random(7)
    now = timezone.now()
    sub_a, sub_b = SubscriptionFactory(), SubscriptionFactory()
    groups = [ResourceGroupFactory(subscription=sub_a), ResourceGroupFactory(subscription=sub_b),
              ResourceGroupFactory(subscription=sub_b)]  # fmt: skip
    for i in range(60):
        machine = MachineFactory(
            resource_group=groups[i % 3],
            location=rng.choice(LOCATIONS),
            os_name=rng.choice(["linux", "windows"]),
            last_heartbeat_at=heartbeat(rng, now),
            # Recorded statuses both right and wrong: the summary counts by the recorded one, the reads correct it.
            status=rng.choice(rules.ALL_STATUSES),
        )
        if rng.random() < 0.7:
            key, value = rng.choice(["env", "Env"]), rng.choice(["prod", "dev"])
            MachineTag.objects.create(machine=machine, key=key, value=value)
        if rng.random() < 0.5:
            MachineTag.objects.create(machine=machine, key="team", value=rng.choice(["a", "b"]))
    return {"now": now, "groups": groups}


def test_counts_are_exact_after_every_kind_of_write(fleet):
    now, groups = fleet["now"], fleet["groups"]
    assert FleetCountDelta.objects.exists()  # the triggers wrote the creations
    assert_exact(groups, now=now)
    fleet_counts_compact()
    assert not FleetCountDelta.objects.exists()
    assert_exact(groups, now=now)

    machine_status_sweep(now=now)  # records every derived status: deltas, then nothing drifts
    assert_exact(groups, now=now)

    later = now + timedelta(hours=2)  # the clock past the last sweep: Connected machines drift to Disconnected
    assert_exact(groups, now=later)
    machines = list(Machine.objects.order_by("pk"))
    for machine in machines[:5]:
        machine_record_heartbeat(machine_id=machine.pk, at=later)  # back Connected, recorded at once
    assert_exact(groups, now=later)

    new = MachineFactory(resource_group=groups[2], location="eastus", os_name="windows", last_heartbeat_at=later)
    MachineTag.objects.create(machine=new, key="env", value="prod")
    machines[6].delete()  # its tags go with it
    tag = MachineTag.objects.filter(key__iexact="env").first()
    tag.value = "dev" if tag.value == "prod" else "prod"
    tag.save()
    MachineTag.objects.filter(key="team").first().delete()
    moved = machines[7]
    moved.resource_group, moved.location, moved.os_name = groups[0], "japaneast", "windows"
    moved.save()
    assert_exact(groups, now=later)
    fleet_counts_compact()  # folded half-way through, then more writes on top of the folded rows
    machine_status_sweep(now=later)
    groups[1].delete()  # a whole group with its machines and their tags
    assert_exact(groups, now=later)

    fleet_counts_compact()
    folded = set(FleetCount.objects.values_list("resource_group_id", "location", "os_name", "status", "tag_key",
                                                "tag_value", "count"))  # fmt: skip
    assert all(row[-1] != 0 for row in folded)  # rows that fold to zero are removed
    fleet_counts_rebuild()
    assert set(FleetCount.objects.values_list("resource_group_id", "location", "os_name", "status", "tag_key",
                                              "tag_value", "count")) == folded  # fmt: skip


def test_a_heartbeat_write_adds_no_delta(fleet):
    fleet_counts_compact()
    machine = Machine.objects.filter(status=rules.CONNECTED).first()
    Machine.objects.filter(pk=machine.pk).update(last_heartbeat_at=fleet["now"], agent_version="1.51.0")
    assert not FleetCountDelta.objects.exists()


def test_no_count_is_left_once_no_machine_is(fleet):
    # What SQLite's flush can do: the summary tables emptied first, then the machines' triggers add their -1 rows.
    FleetCountDelta.objects.all().delete()
    FleetCount.objects.all().delete()
    Machine.objects.all().delete()
    assert FleetCountDelta.objects.exists()
    fleet_counts_clear_if_no_machines()
    assert not FleetCountDelta.objects.exists() and not FleetCount.objects.exists()


def _user(django_user_model, name, role, scope):
    user = django_user_model.objects.create_user(username=name, password=f"pw-{name}-123")
    role_assignment_create(scope=scope, role_definition_id=authz.ROLES_BY_NAME[role].id,
                           principal_id=user_object_id(user), principal_kind="user")  # fmt: skip
    return user_with_grants(user)  # as the middleware hands it to a view


@pytest.mark.parametrize(
    "params",
    [{}, {"status": "Connected"}, {"status": "Expired"}, {"location": "eastus", "os": "windows"}, {"tag": "env=prod"},
     {"tag": "ENV"}, {"resource_group": "RG-0"}, {"q": "server-"}],
)  # fmt: skip
def test_the_blade_counts_are_those_of_count_over_its_list(fleet, django_user_model, params):
    groups = fleet["groups"]
    groups[0].name = "rg-0"
    groups[0].save()
    now = fleet["now"] + timedelta(minutes=10)  # later than the fleet was written, earlier than Offline
    users = [
        _user(django_user_model, "owner", authz.OWNER, f"/subscriptions/{groups[1].subscription.subscription_id}"),
        _user(django_user_model, "reader", authz.READER, groups[0].arm_id),
        _user(django_user_model, "one", authz.READER, Machine.objects.filter(resource_group=groups[1]).first().arm_id),
    ]
    from machines.governance import machines_permitted

    totals = []
    for user in users:
        filterset = MachineFilterSet(params, queryset=machines_permitted(machine_base_queryset(), user), now=now)
        assert filterset.is_valid()
        listed = machine_list_counts(filterset=filterset, principal=user, now=now)
        assert listed.counts == machine_status_counts(queryset=filterset.qs, now=now), (user.username, params)
        totals.append(listed.counts["total"])
        if listed.group_sizes is not None:
            sizes = defaultdict(int)
            for group_id in filterset.qs.values_list("resource_group_id", flat=True):
                sizes[group_id] += 1
            assert listed.group_sizes == dict(sizes)
    assert any(totals), "nobody saw a machine: the comparison would prove nothing"


def test_the_summary_answers_the_blade_and_a_name_search_or_a_grant_on_one_machine_counts(fleet, django_user_model):
    group = fleet["groups"][0]
    owner = _user(django_user_model, "owner", authz.OWNER, f"/subscriptions/{group.subscription.subscription_id}")
    one = _user(django_user_model, "one", authz.READER, Machine.objects.filter(resource_group=group).first().arm_id)

    def tables_read(user, params):
        filterset = MachineFilterSet(params, queryset=Machine.objects.all(), now=fleet["now"])
        assert filterset.is_valid()
        with CaptureQueriesContext(connection) as queries:
            machine_list_counts(filterset=filterset, principal=user, now=fleet["now"])
        return " ".join(query["sql"] for query in queries.captured_queries)

    assert "machines_fleetcount" in tables_read(owner, {"tag": "env=prod", "os": "linux"})
    assert "machines_fleetcount" not in tables_read(owner, {"q": "server"})
    assert "machines_fleetcount" not in tables_read(one, {})


def test_a_sweep_far_behind_counts_with_count_instead(fleet, django_user_model, monkeypatch):
    from machines import fleet_counts
    from tests.conftest import grant_owner_everywhere

    owner = django_user_model.objects.create_user(username="owner", password="pw-owner-123")
    grant_owner_everywhere(owner)
    owner = user_with_grants(owner)
    now, thresholds = fleet["now"], status_thresholds()
    derived = {m.pk: derive_status(last_heartbeat_at=m.last_heartbeat_at, now=now, thresholds=thresholds)
               for m in Machine.objects.all()}  # fmt: skip
    drifted = [m for m in Machine.objects.all() if m.status != derived[m.pk]]
    assert len(drifted) > 3  # the fleet's recorded statuses are random
    filterset = MachineFilterSet({}, queryset=Machine.objects.all(), now=now)
    assert filterset.is_valid()
    monkeypatch.setattr(fleet_counts, "DRIFT_LIMIT", 3)
    with pytest.raises(fleet_counts.TooMuchDrift):
        counts_by_group(CountScope(), now=now, thresholds=thresholds)
    listed = machine_list_counts(filterset=filterset, principal=owner, now=now)
    assert listed.counts == machine_status_counts(queryset=filterset.qs, now=now) and listed.group_sizes is None
    assert listed.counts["total"] == Machine.objects.count()
