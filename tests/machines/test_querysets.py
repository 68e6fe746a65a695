"""The ORM predicates agree with derive_status at every boundary (the same cutoffs build both)."""

from datetime import timedelta

import pytest

from machines import status
from machines.conf import status_thresholds
from machines.models import Machine
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

AGES = {
    "never": None,
    "fresh": timedelta(0),
    "at-25-min": timedelta(minutes=25),
    "25-min-1s": timedelta(minutes=25, seconds=1),
    "45-days": timedelta(days=45),
    "45-days-1s": timedelta(days=45, seconds=1),
}


@pytest.fixture
def fleet(now):
    group = ResourceGroupFactory()
    return {
        label: MachineFactory(resource_group=group, name=label, last_heartbeat_at=None if age is None else now - age)
        for label, age in AGES.items()
    }


def test_status_predicates_match_the_rule(fleet, now):
    thresholds = status_thresholds()
    for value in status.ALL_STATUSES:
        by_predicate = set(
            Machine.objects.with_status(value, now=now, thresholds=thresholds).values_list("name", flat=True)
        )
        by_rule = {
            m.name
            for m in fleet.values()
            if status.derive_status(last_heartbeat_at=m.last_heartbeat_at, now=now, thresholds=thresholds) == value
        }
        assert by_predicate == by_rule, value


def test_status_counts_in_one_query(fleet, now, django_assert_num_queries):
    with django_assert_num_queries(1):
        counts = Machine.objects.status_counts(now=now, thresholds=status_thresholds())
    assert counts == {
        "total": 6,
        status.AWAITING: 1,
        status.CONNECTED: 2,
        status.DISCONNECTED: 2,
        status.EXPIRED: 1,
    }
