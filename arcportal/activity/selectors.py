"""Reads of the activity log, shared by the ARM list and the portal pages."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from arcportal.activity.models import ActivityEvent
from arcportal.activity.resource_ids import filing, fold


def activity_list(
    *,
    subscription_id: str,
    start: dt.datetime,
    end: dt.datetime,
    resource_group: str | None = None,
    resource_uri: str | None = None,
    correlation_id: str | None = None,
    resource_provider: str | None = None,
    status: str | None = None,
    caller: str | None = None,
    operation: str | None = None,
) -> QuerySet[ActivityEvent]:
    """Events of one subscription in ``[start, end]``, newest first. Without a group or resource filter, the
    installation's tenant-level events (sign-ins: no subscription) are included, since one tenant holds them all.
    ``resource_uri`` matches that resource and everything under it (a machine's extensions)."""
    events = ActivityEvent.objects.filter(event_timestamp__gte=start, event_timestamp__lte=end)
    sub = fold(subscription_id)
    if resource_group is None and resource_uri is None:
        events = events.filter(Q(subscription_id=sub) | Q(subscription_id=""))
    else:
        events = events.filter(subscription_id=sub)
    if resource_group is not None:
        events = events.filter(resource_group=fold(resource_group))
    if resource_uri is not None:
        key = filing(resource_uri).key
        events = events.filter(Q(resource_key=key) | Q(resource_key__startswith=key + "/"))
    if correlation_id is not None:
        events = events.filter(correlation_id=correlation_id)
    if resource_provider is not None:
        events = events.filter(resource_provider=fold(resource_provider))
    if status is not None:
        events = events.filter(status__iexact=status)
    if caller is not None:
        events = events.filter(caller__iexact=caller)
    if operation is not None:
        events = events.filter(operation_name__icontains=operation)
    return events.order_by("-event_timestamp", "-id")


def activity_get(*, event_data_id: str) -> ActivityEvent | None:
    return ActivityEvent.objects.filter(event_data_id=event_data_id).first()
