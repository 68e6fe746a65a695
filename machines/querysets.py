"""Reusable ORM predicates. Status predicates are ranges on the indexed ``last_heartbeat_at``, built from the
same cutoffs as ``status.derive_status`` so that filters and counts agree with every badge."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Count, Q

from machines import status as rules
from machines.status import StatusThresholds, status_cutoffs


def status_q(value: str, *, now: datetime, thresholds: StatusThresholds) -> Q:
    cutoffs = status_cutoffs(now=now, thresholds=thresholds)
    if value == rules.AWAITING:
        return Q(last_heartbeat_at__isnull=True)
    if value == rules.CONNECTED:
        return Q(last_heartbeat_at__gte=cutoffs.connected_since)
    if value == rules.DISCONNECTED:
        return Q(last_heartbeat_at__lt=cutoffs.connected_since, last_heartbeat_at__gte=cutoffs.expired_before)
    if value == rules.EXPIRED:
        return Q(last_heartbeat_at__lt=cutoffs.expired_before)
    raise ValueError(f"Unknown status {value!r}")


class MachineQuerySet(models.QuerySet):
    def with_status(self, value: str, *, now: datetime, thresholds: StatusThresholds) -> MachineQuerySet:
        return self.filter(status_q(value, now=now, thresholds=thresholds))

    def in_resource_group(self, resource_group) -> MachineQuerySet:
        return self.filter(resource_group=resource_group)

    def heartbeat_older_than(self, cutoff: datetime) -> MachineQuerySet:
        return self.filter(last_heartbeat_at__lt=cutoff)

    def status_counts(self, *, now: datetime, thresholds: StatusThresholds) -> dict[str, int]:
        """Total and per-status counts in one aggregate query.

        Only ``last_heartbeat_at`` is read (``COUNT(*)`` and ``COUNT(last_heartbeat_at)``), so PostgreSQL can answer
        from that index alone; "awaiting" is the machines without a heartbeat: total minus those with one.
        """
        aggregates = {
            value: Count("last_heartbeat_at", filter=status_q(value, now=now, thresholds=thresholds))
            for value in rules.ALL_STATUSES
            if value != rules.AWAITING
        }
        result = self.aggregate(total=Count("*"), seen=Count("last_heartbeat_at"), **aggregates)
        result[rules.AWAITING] = (result["total"] or 0) - (result.pop("seen") or 0)
        return {key: int(count or 0) for key, count in result.items()}
