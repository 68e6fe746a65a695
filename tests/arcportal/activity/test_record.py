"""The activity log's writer (issue 13): one event per operation, in the transaction of its change; the request's
correlation id and address; the retention purge run by beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from arcportal import settings as project_settings
from arcportal.activity import record
from arcportal.activity.middleware import HEADER, CorrelationIdMiddleware
from arcportal.activity.models import ActivityEvent
from arcportal.activity.resource_ids import filing
from arcportal.activity.tasks import activity_purge_task

pytestmark = pytest.mark.django_db

MACHINE = "/subscriptions/S1/resourceGroups/Rg-One/providers/Microsoft.HybridCompute/machines/Web01"


def test_record_writes_one_event_with_every_field():
    event = record(
        operation="Microsoft.HybridCompute/machines/write",
        status="Succeeded",
        resource_id=MACHINE,
        caller="alice",
        caller_ip="10.1.2.3",
        correlation_id="c-1",
        properties={"statusCode": "OK"},
    )
    event.refresh_from_db()
    assert (event.operation_name, event.status, event.caller, event.caller_ip, event.correlation_id) == (
        "Microsoft.HybridCompute/machines/write",
        "Succeeded",
        "alice",
        "10.1.2.3",
        "c-1",
    )
    assert (event.subscription_id, event.resource_group, event.resource_type) == (
        "s1",
        "rg-one",
        "microsoft.hybridcompute/machines",
    )
    assert event.level == "Informational" and event.properties == {"statusCode": "OK"} and event.error is None


def test_a_failed_event_carries_its_error_at_level_error():
    event = record(
        operation="Microsoft.HybridCompute/machines/delete",
        status="Failed",
        resource_id=MACHINE,
        caller="app-1",
        error={"code": "ScopeLocked", "message": "locked"},
    )
    assert event.level == "Error" and event.error == {"code": "ScopeLocked", "message": "locked"}


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        record(operation="x/write", status="Done", resource_id=MACHINE, caller="a")
    assert not ActivityEvent.objects.exists()


def test_the_event_rolls_back_with_the_change_it_records(django_user_model):
    with pytest.raises(RuntimeError), transaction.atomic():
        django_user_model.objects.create(username="bob")
        record(operation="x/write", status="Succeeded", resource_id=MACHINE, caller="a")
        raise RuntimeError("the change fails after the event was written")
    assert not ActivityEvent.objects.exists()
    assert not django_user_model.objects.filter(username="bob").exists()


def test_filing_of_other_resource_types():
    lock = filing("/subscriptions/S/resourceGroups/RG/providers/Microsoft.Authorization/locks/L")
    assert (lock.resource_group, lock.resource_type) == ("rg", "microsoft.authorization/locks")
    assert filing("/subscriptions/S/resourceGroups/RG").resource_type == "microsoft.resources/resourcegroups"
    assert filing("/subscriptions/S").resource_type == "microsoft.resources/subscriptions"
    extension = filing(MACHINE + "/extensions/E")
    assert extension.resource_type == "microsoft.hybridcompute/machines/extensions"
    assert extension.key.startswith(filing(MACHINE).key + "/")


def _respond(request):
    event = record(operation="x/write", status="Succeeded", resource_id=MACHINE, caller="a")
    from django.http import HttpResponse

    return HttpResponse(str(event.pk))


def test_a_request_gets_a_correlation_id_recorded_and_returned():
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7")
    response = CorrelationIdMiddleware(_respond)(request)
    event = ActivityEvent.objects.get(pk=int(response.content))
    assert response[HEADER] == event.correlation_id == request.correlation_id
    assert len(event.correlation_id) == 36 and event.caller_ip == "192.0.2.7"


def test_the_clients_correlation_id_is_kept_and_a_hostile_one_replaced():
    sent = RequestFactory().get("/", HTTP_X_MS_CORRELATION_REQUEST_ID="7a1f-client")
    assert CorrelationIdMiddleware(_respond)(sent)[HEADER] == "7a1f-client"
    hostile = RequestFactory().get("/", HTTP_X_MS_CORRELATION_REQUEST_ID="a,b\u00e9=1;DROP")
    replaced = CorrelationIdMiddleware(_respond)(hostile)[HEADER]
    assert replaced != "a,b\u00e9=1;DROP" and len(replaced) == 36


def test_outside_a_request_the_event_has_no_correlation_id():
    event = record(operation="x/write", status="Succeeded", resource_id=MACHINE, caller="beat")
    assert event.correlation_id == "" and event.caller_ip == ""


def test_beat_purges_events_past_the_retention(settings):
    settings.ARC_ACTIVITY_LOG_RETENTION_DAYS = 90
    now = timezone.now()
    old = record(operation="x/write", status="Succeeded", resource_id=MACHINE, caller="a")
    kept = record(operation="x/write", status="Succeeded", resource_id=MACHINE, caller="a")
    ActivityEvent.objects.filter(pk=old.pk).update(event_timestamp=now - timedelta(days=90, minutes=1))
    ActivityEvent.objects.filter(pk=kept.pk).update(event_timestamp=now - timedelta(days=89, hours=23))
    assert activity_purge_task() == 1
    assert list(ActivityEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    entry = project_settings.CELERY_BEAT_SCHEDULE["activity-log-purge"]
    assert entry["task"] == "arcportal.activity.tasks.activity_purge_task"


def test_the_bulk_writer_stores_what_record_stores_on_every_database():
    """``activity_record_many`` (the sweep's: ``COPY`` on PostgreSQL, a bulk INSERT elsewhere) against ``record``."""
    from arcportal.activity.services import _many_values, activity_record_many

    at = timezone.now() - timedelta(minutes=3)
    fields = {
        "operation": "Microsoft.HybridCompute/machines/status/action",
        "status": "Succeeded",
        "resource_id": MACHINE,
        "caller": "Microsoft.HybridCompute",
        "level": "Warning",
        "properties": {"fromStatus": "Connected", "toStatus": "Disconnected", "reason": 'it\'s \\ \t "quiet"'},
    }
    single = record(**fields)
    assert activity_record_many([{**fields, "at": at}, {**fields, "at": at}]) == 2
    written = list(ActivityEvent.objects.exclude(pk=single.pk).order_by("pk"))
    assert len(written) == 2 and written[0].event_data_id != written[1].event_data_id
    names = {f.name for f in ActivityEvent._meta.concrete_fields if not f.primary_key}
    assert set(_many_values({**fields, "at": at})) == names  # every column, no more
    single.refresh_from_db()
    for row in written:
        for name in names - {"event_data_id", "operation_id", "event_timestamp"}:
            assert getattr(row, name) == getattr(single, name), name
        assert row.event_timestamp == at
