"""The portal's Activity log at subscription, resource-group and machine scope: time span, filters, each event's
JSON (Azure's EventData, the same body the ARM list returns) and a CSV export of what the filters show."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from arcportal import authz
from arcportal.activity.eventdata import event_data
from arcportal.activity.selectors import activity_list
from arcportal.htmx import is_partial
from identity import selectors as identity_selectors
from machines.activitylog.forms import ActivityFilterForm
from machines.csv_export import csv_line
from machines.menu import render_machine_page
from machines.scopes import portal_scope

PAGE_SIZE = 50
CSV_LIMIT = 100_000
CSV_HEADER = ["Time (UTC)", "Operation name", "Status", "Level", "Caller", "Caller IP", "Correlation ID", "Resource"]


def _events(scope, form: ActivityFilterForm):
    start, end = form.window(now=timezone.now())
    data = form.cleaned_data
    narrow = {} if scope.kind == "subscription" else {"resource_uri": scope.arm_id}
    return activity_list(
        subscription_id=str(scope.subscription.subscription_id),
        start=start,
        end=end,
        status=data.get("status") or None,
        operation=data.get("operation") or None,
        caller=data.get("caller") or None,
        **narrow,
    )


def _csv(events, scope) -> StreamingHttpResponse:
    def rows():
        yield csv_line(CSV_HEADER)
        for event in events[:CSV_LIMIT].iterator(chunk_size=1000):
            yield csv_line(
                [
                    event.event_timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    event.operation_name,
                    event.status,
                    event.level,
                    event.caller,
                    event.caller_ip,
                    event.correlation_id,
                    event.resource_id,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="activity-log-{scope.label[:40]}-{stamp}.csv"'
    return response


def activity_log(
    request: HttpRequest, subscription_id: str, resource_group: str | None = None, name: str | None = None
) -> HttpResponse:
    scope = portal_scope(subscription_id=subscription_id, resource_group=resource_group, name=name)
    if not authz.can(request.user, authz.READ, scope.arm_id):
        return HttpResponse("You do not have access to this scope's activity log.", status=403)
    form = ActivityFilterForm(request.GET or {"timespan": "24h"})
    valid = form.is_valid()
    if valid and request.GET.get("export") == "csv":
        return _csv(_events(scope, form), scope)
    page = None
    if valid:
        tenant = identity_selectors.tenant_get()
        tenant_id = str(tenant.tenant_id) if tenant else ""
        page = Paginator(_events(scope, form), PAGE_SIZE).get_page(request.GET.get("page"))
        page.rows = [
            (event, json.dumps(event_data(event, tenant_id=tenant_id), indent=2, sort_keys=True)) for event in page
        ]
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    context = {
        "scope": scope,
        "form": form,
        "page": page,
        "show_results": page is not None,
        "query": query.urlencode(),
        "page_url": request.path,
    }
    status = 200 if valid else 400
    if scope.kind == "machine":
        return render_machine_page(
            request,
            "machines/activitylog/machine_activity_log.html",
            machine=scope.machine,
            active="machines:machine-activity",
            context=context,
            status=status,
        )
    partial = is_partial(request)
    template = "machines/partials/activity_log_blade.html" if partial else "machines/activitylog/activity_log.html"
    return render(request, template, context, status=status)
