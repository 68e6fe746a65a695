"""Portal pages of the Machines blade: the machine list (full page, HTMX rows, CSV) and its bulk commands.

Each view parses its input, calls selectors or one service, and renders. The request's "now" comes from
``request_now()`` (one place, so tests can freeze it) and every status on a page is derived at that instant, with the
words of ``machines.status.VOCABULARY``. The machine Overview is ``views_machine``, resource groups
``views_resource_groups``.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from arcportal import authz
from arcportal.exceptions import ApplicationError
from arcportal.forms import parse_id
from arcportal.htmx import is_partial
from machines import fleet_counts, governance, selectors, services
from machines import status as rules
from machines.choices import OsType
from machines.conf import status_thresholds
from machines.csv_export import csv_line
from machines.filters import SORTS, STATUS_CHOICES
from machines.forms import MachineAssignTagsForm, MachineDeleteForm
from machines.regions import REGION_CHOICES, display_name
from machines.templatetags.machines import status_badge

CSV_CHUNK = 2000
# Columns of the grid, in order: (sort key or None, header).
COLUMNS = [
    ("name", "Name"),
    ("status", "Status"),
    ("resource_group", "Resource group"),
    ("location", "Location"),
    ("os", "Operating system"),
    ("agent_version", "Agent version"),
    ("last_heartbeat", "Last heartbeat"),
    (None, "Tags"),
]
LIST_PARAMS = ("subscription", "resource_group", "location", "status", "os", "tag", "q", "sort", "page")


def request_now() -> datetime:
    """The instant every status of one response is derived at."""
    return timezone.now()


class CountedPaginator(Paginator):
    """A Paginator that is told the count (the counts strip already computed it in the same aggregate)."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


# --- Machines list ----------------------------------------------------------------------------------------------


def _list_params(query: QueryDict) -> QueryDict:
    """Only the list's own parameters, so links and the poll URL never carry anything else."""
    params = QueryDict(mutable=True)
    for key in LIST_PARAMS:
        values = [v for v in query.getlist(key) if v != ""]
        if values:
            params.setlist(key, values[-1:])
    return params


def _ago(moment: datetime, now: datetime) -> str:
    """Compact age for the grid ("42 s ago", "5 min ago", "3 h ago", "12 d ago"); the exact time is the title."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _machine_rows(machines, now: datetime) -> list[dict]:
    """The grid's cells, computed in Python once per row (a page is re-rendered every poll)."""
    rows = []
    for machine in machines:
        beat = machine.last_heartbeat_at
        rows.append(
            {
                "pk": machine.pk,
                "name": machine.name,
                "url": machine.get_absolute_url(),
                "status": machine.derived_status,
                "badge": status_badge(machine.derived_status),
                "resource_group": machine.resource_group.name,
                "location": display_name(machine.location),
                "os": machine.os_sku or machine.get_os_name_display() or machine.os_type,
                "agent_version": machine.agent_version,
                "heartbeat_iso": beat.isoformat() if beat else "",
                "heartbeat_title": f"{beat:%Y-%m-%d %H:%M:%S} UTC" if beat else "",
                "heartbeat_ago": _ago(beat, now) if beat else "",
                "tags": [f"{tag.key}: {tag.value}" if tag.value else tag.key for tag in machine.tag_set.all()],
            }
        )
    return rows


def _readable_machines(request: HttpRequest):
    """The machines the signed-in user may read (its role assignments); nothing else is ever listed."""
    return governance.machines_permitted(selectors.machine_base_queryset(), request.user)


def _permitted_or_403(request: HttpRequest, machines: list, action: str) -> list:
    """All of ``machines`` if the user may ``action`` every one of them, else 403: a bulk action is never partial."""
    allowed = {
        m.pk
        for m in governance.machines_permitted(
            selectors.machine_list_by_ids(ids=[m.pk for m in machines]), request.user, action
        )
    }
    if any(machine.pk not in allowed for machine in machines):
        raise PermissionDenied(f"You may not {action} every selected machine.")
    return machines


def _machine_list_context(request: HttpRequest, query: QueryDict, *, full_page: bool = True) -> tuple[dict, int]:
    """Everything the list page (or only its rows fragment) shows, and the status code (400 for a bad filter)."""
    now = request_now()
    params = _list_params(query)
    filterset = selectors.machine_list_filtered(params=params, now=now, queryset=_readable_machines(request))
    context: dict = {
        "filterset": filterset,
        "now": now,
        "params": params,
        "query": params.urlencode(),
        "refresh_seconds": settings.ARC_LIST_REFRESH_SECONDS,
    }
    if full_page:
        context.update(
            columns=_columns(params),
            pill_clear=_filter_pills(params),
            status_choices=STATUS_CHOICES,
            region_choices=REGION_CHOICES,
            os_choices=OsType.choices,
            subscriptions=selectors.subscription_list(),
            resource_groups=selectors.resource_group_names(),
        )
    if not filterset.is_valid():
        errors = [f"{message}" for messages_ in filterset.errors.values() for message in messages_]
        context.update(filter_errors=errors, machines=[], counts=None, page=None, fleet_empty=False)
        return context, 400
    queryset = filterset.qs
    listed = fleet_counts.machine_list_counts(filterset=filterset, principal=request.user, now=now)
    counts = listed.counts
    sort = filterset.form.cleaned_data.get("sort")
    ids = selectors.MachinePageIds(queryset, sort=sort, group_sizes=listed.group_sizes)
    paginator = CountedPaginator(ids, settings.ARC_PORTAL_PAGE_SIZE, count=counts["total"])
    page = paginator.get_page(params.get("page"))
    machines = selectors.machines_by_ids_in_order(ids=page.object_list)
    machines = _machine_rows(selectors.machines_with_status(machines=machines, now=now), now)
    filtered = bool(filterset.active_filters())
    fleet_empty = counts["total"] == 0 and (not filtered or not selectors.machine_fleet_exists())
    context.update(
        machines=machines,
        counts=counts,
        count_items=_count_items(params, counts),
        page=page,
        filtered=filtered,
        fleet_empty=fleet_empty,
        page_links=_page_links(params, page),
    )
    return context, 200


def _with(params: QueryDict, **changes) -> str:
    query = params.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return query.urlencode()


def _count_items(params: QueryDict, counts: dict[str, int]) -> list[dict]:
    """The counts strip: total, then one entry per status, each a link that filters the list by it."""
    current = params.get("status", "")
    items = [{"key": "total", "label": "Total", "css": "", "count": counts["total"], "active": not current}]
    items[0]["url"] = "?" + _with(params, status=None, page=None)
    for value, label in STATUS_CHOICES:
        items.append(
            {
                "key": value.lower(),
                "label": label,
                "css": f"status {rules.status_css(value)}",
                "count": counts[value],
                "active": current.casefold() in (value.casefold(), label.casefold()),
                "url": "?" + _with(params, status=value, page=None),
            }
        )
    return items


def _columns(params: QueryDict) -> list[dict]:
    current = params.get("sort", "name")
    columns = []
    for key, label in COLUMNS:
        column = {"key": key, "label": label, "sorted": None, "url": None}
        if key is not None and key in SORTS:
            if current == key:
                column["sorted"], next_sort = "ascending", f"-{key}"
            elif current == f"-{key}":
                column["sorted"], next_sort = "descending", key
            else:
                next_sort = key
            column["url"] = "?" + _with(params, sort=next_sort, page=None)
        columns.append(column)
    return columns


def _filter_pills(params: QueryDict) -> dict[str, str]:
    """For each filter that is set, the link that removes it (the pill's ×), keeping the others."""
    names = ("subscription", "resource_group", "location", "status", "os", "tag", "q")
    return {name: "?" + _with(params, **{name: None, "page": None}) for name in names if params.get(name)}


def _page_links(params: QueryDict, page) -> dict:
    def link(number):
        return "?" + _with(params, page=str(number))

    return {
        "first": link(1) if page.number > 1 else None,
        "previous": link(page.previous_page_number()) if page.has_previous() else None,
        "next": link(page.next_page_number()) if page.has_next() else None,
        "last": link(page.paginator.num_pages) if page.number < page.paginator.num_pages else None,
    }


@require_safe
def machine_list(request: HttpRequest) -> HttpResponse:
    """Machines – Azure Arc. An HTMX poll of the same URL gets only the rows (and the counts, out of band)."""
    partial = is_partial(request)
    context, status = _machine_list_context(request, request.GET, full_page=not partial)
    if partial:
        return render(request, "machines/partials/machine_rows.html", {**context, "oob": True}, status=status)
    return render(request, "machines/machine_list.html", context, status=status)


@require_safe
def machine_export(request: HttpRequest) -> HttpResponse:
    """Export to CSV: every row of the filtered and sorted list (all pages), streamed in chunks; every cell quoted
    and guarded against formulas (``machines.csv_export``)."""
    now = request_now()
    filterset = selectors.machine_list_filtered(
        params=_list_params(request.GET), now=now, queryset=_readable_machines(request)
    )
    if not filterset.is_valid():
        errors = "; ".join(str(m) for messages_ in filterset.errors.values() for m in messages_)
        return HttpResponse(f"Bad filter: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    thresholds = status_thresholds()
    header = [
        "Name",
        "Status",
        "Resource group",
        "Subscription",
        "Location",
        "Operating system",
        "Agent version",
        "Last heartbeat (UTC)",
        "Tags",
        "Resource ID",
    ]

    def rows():
        yield csv_line(header)
        for machine in selectors.machine_list_columns(queryset=filterset.qs).iterator(chunk_size=CSV_CHUNK):
            status = rules.derive_status(last_heartbeat_at=machine.last_heartbeat_at, now=now, thresholds=thresholds)
            tags = "; ".join(f"{tag.key}={tag.value}" for tag in machine.tag_set.all())
            cells = [
                machine.name,
                rules.portal_label(status),
                machine.resource_group.name,
                machine.resource_group.subscription.display_name,
                display_name(machine.location),
                machine.os_sku or machine.get_os_name_display(),
                machine.agent_version,
                machine.last_heartbeat_at.strftime("%Y-%m-%dT%H:%M:%SZ") if machine.last_heartbeat_at else "",
                tags,
                machine.arm_id,
            ]
            yield csv_line(cells)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="arc-machines-{now:%Y%m%d-%H%M%S}.csv"'
    return response


def _next_list_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("machines:machine-list")


def _list_query_of(url: str) -> QueryDict:
    return QueryDict(url.partition("?")[2])


def _bulk_error(request: HttpRequest, form, dialog: str) -> HttpResponse:
    """Re-show the list the user came from with the dialog open and its errors inline; nothing was changed."""
    context, _ = _machine_list_context(request, _list_query_of(_next_list_url(request)))
    selected = {pk for pk in map(parse_id, request.POST.getlist("machine")) if pk is not None}
    context.update({f"{dialog}_form": form, "open_dialog": dialog, "bulk_selected": selected})
    return render(request, "machines/machine_list.html", context, status=400)


@require_POST
def machine_assign_tags(request: HttpRequest) -> HttpResponse:
    form = MachineAssignTagsForm(request.POST)
    if not form.is_valid():
        return _bulk_error(request, form, "assign_tags")
    machines = list(selectors.machine_list_by_ids(ids=form.cleaned_data["machine"]))
    if not machines:
        form.add_error("machine", "None of the selected machines exists any more.")
        return _bulk_error(request, form, "assign_tags")
    _permitted_or_403(request, machines, authz.WRITE)
    name, value = form.cleaned_data["tag_name"], form.cleaned_data["tag_value"]
    try:
        count = services.machines_assign_tags(machines=machines, tags={name: value})
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _bulk_error(request, form, "assign_tags")
    messages.success(request, f"Assigned tag {name}={value} to {count} machine{'s' if count != 1 else ''}.")
    return redirect(_next_list_url(request))


@require_POST
def machine_delete(request: HttpRequest) -> HttpResponse:
    form = MachineDeleteForm(request.POST)
    if not form.is_valid():
        return _bulk_error(request, form, "delete")
    machines = list(selectors.machine_list_by_ids(ids=form.cleaned_data["machine"]))
    if not machines:
        form.add_error("machine", "None of the selected machines exists any more.")
        return _bulk_error(request, form, "delete")
    _permitted_or_403(request, machines, authz.DELETE)
    try:
        services.machines_delete(machine_ids=[machine.pk for machine in machines], actor=request.user.get_username())
    except ApplicationError as exc:  # a lock (409 ScopeLocked): nothing was deleted
        form.add_error("machine", exc.message)
        return _bulk_error(request, form, "delete")
    names = ", ".join(machine.name for machine in machines[:5]) + ("…" if len(machines) > 5 else "")
    messages.success(request, f"Deleted {len(machines)} machine{'s' if len(machines) != 1 else ''}: {names}.")
    return redirect(_next_list_url(request))
