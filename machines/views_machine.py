"""A machine's own pages on the resource-menu layout (``machines.menu``): Overview (essentials, status badge (polled),
tags edited in place, the status timeline, status changes, and the panels other apps add (``machines.panels``:
onboarding's "Connected Machine agent")), Tags, and Properties."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_safe

from arcportal.exceptions import ApplicationError
from arcportal.htmx import is_partial
from machines import selectors, services, timeline
from machines.conf import status_thresholds
from machines.forms import tag_formset
from machines.menu import is_fragment_request, render_machine_page
from machines.panels import machine_panels
from machines.regions import display_name
from machines.views import request_now

OVERVIEW, TAGS, PROPERTIES = "machines:machine-detail", "machines:machine-tags", "machines:machine-properties"


def _panels(request: HttpRequest, machine) -> list[SafeString]:
    """The registered panels, each rendered with the machine and its own context (CSRF token included)."""
    return [
        render_to_string(panel.template, {"machine": machine, **panel.context}, request=request)
        for panel in machine_panels(machine)
    ]


def _machine_or_404(subscription_id: str, resource_group: str, name: str):
    subscription = selectors.subscription_get(subscription_id=subscription_id)
    group = subscription and selectors.resource_group_get(subscription=subscription, name=resource_group)
    machine = group and selectors.machine_get(resource_group=group, name=name)
    if not machine:
        raise Http404(f"The machine '{name}' was not found in resource group '{resource_group}'.")
    return machine


def _tags_context(machine, *, formset=None, editing=False, on_tags_page=False) -> dict:
    """The tags panel's context; ``on_tags_page``: the panel sits on the Tags page (links and redirects stay there)."""
    tags = selectors.machine_tags(machine)
    if editing and formset is None:
        formset = tag_formset(initial=tags, extra=3)
    tags_url, detail_url = machine.get_absolute_url("machine-tags"), machine.get_absolute_url()
    return {
        "machine": machine,
        "tags": tags,
        "tag_formset": formset,
        "editing": editing,
        "on_tags_page": on_tags_page,
        "tags_url": tags_url,
        "detail_url": detail_url,
        "edit_href": f"{tags_url}?edit=1" if on_tags_page else f"{detail_url}?edit_tags=1",
        "cancel_href": tags_url if on_tags_page else detail_url,
    }


def _machine_detail_context(request: HttpRequest, machine, *, tags_context: dict | None = None) -> dict:
    now = request_now()
    (machine,) = selectors.machines_with_status(machines=[machine], now=now)
    thresholds = status_thresholds()
    since = now - timedelta(days=timeline.DEFAULT_DAYS)
    window_events = selectors.machine_status_events_since(machine=machine, since=since)
    bands = timeline.status_bands(
        events=[(event.at, event.from_status, event.to_status) for event in window_events],
        last_heartbeat_at=machine.last_heartbeat_at,
        now=now,
        thresholds=thresholds,
        created_at=machine.created_at,
    )
    return {
        "machine": machine,
        "now": now,
        "detail_url": machine.get_absolute_url(),
        "refresh_seconds": settings.ARC_LIST_REFRESH_SECONDS,
        "location_name": display_name(machine.location),
        "events": selectors.machine_status_events(machine=machine, limit=50),
        "timeline_svg": mark_safe(timeline.timeline_svg(bands=bands, now=now)),  # built from escaped parts only
        "timeline_legend": timeline.legend(bands, now=now),
        "delete_form": None,
        "panels": _panels(request, machine),
        **(tags_context or _tags_context(machine, editing=request.GET.get("edit_tags") == "1")),
    }


@require_safe
def machine_detail(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """ "<name> | Overview". The badge's HTMX poll of the same URL gets only the status badge."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    if is_fragment_request(request):
        (machine,) = selectors.machines_with_status(machines=[machine], now=request_now())
        context = {"machine": machine, "detail_url": machine.get_absolute_url()}
        context["refresh_seconds"] = settings.ARC_LIST_REFRESH_SECONDS
        return render(request, "machines/partials/machine_status_badge.html", context)
    return _overview(request, machine, _machine_detail_context(request, machine))


def _overview(request: HttpRequest, machine, context: dict, *, status: int = 200) -> HttpResponse:
    template = "machines/machine_detail.html"
    return render_machine_page(
        request, template, machine=context["machine"], active=OVERVIEW, context=context, status=status
    )


def _tags_page(request: HttpRequest, machine, tags_context: dict, *, status: int = 200) -> HttpResponse:
    template = "machines/machine_tags.html"
    return render_machine_page(request, template, machine=machine, active=TAGS, context=tags_context, status=status)


@require_safe
def machine_properties(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """ "<name> | Properties": the resource's identity, operating system, agent and detected properties."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    (machine,) = selectors.machines_with_status(machines=[machine], now=request_now())
    context = {"properties_url": machine.get_absolute_url("machine-properties")}
    return render_machine_page(
        request, "machines/machine_properties.html", machine=machine, active=PROPERTIES, context=context
    )


@require_http_methods(["GET", "POST"])
def machine_tags(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """ "<name> | Tags", and the tags panel edited in place (on the Overview and on this page): GET ``?edit=1``
    gives the editor, POST saves the whole set. The panel's own HTMX requests get the panel only."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    source = request.GET if request.method == "GET" else request.POST
    fragment = is_fragment_request(request)
    on_tags_page = source.get("page") == "tags" or not fragment
    if request.method == "GET":
        context = _tags_context(machine, editing=request.GET.get("edit") == "1", on_tags_page=on_tags_page)
        if fragment:
            return render(request, "machines/partials/machine_tags.html", context)
        return _tags_page(request, machine, context)

    on_tags_page = source.get("page") == "tags"
    formset = tag_formset(data=request.POST, extra=0)
    if formset.is_valid():
        try:
            services.machine_update_tags(machine=machine, tags=formset.tags())
        except ApplicationError as exc:
            formset.non_form_errors().append(exc.message)
        else:
            machine = selectors.machine_get_by_id(pk=machine.pk)  # the prefetched tags are stale now
            if is_partial(request):
                context = _tags_context(machine, on_tags_page=on_tags_page)
                return render(request, "machines/partials/machine_tags.html", context)
            messages.success(request, f"Saved the tags of {machine.name}.")
            return redirect(machine.get_absolute_url("machine-tags" if on_tags_page else "machine-detail"))
    tags_context = _tags_context(machine, formset=formset, editing=True, on_tags_page=on_tags_page)
    if is_partial(request):
        return render(request, "machines/partials/machine_tags.html", tags_context, status=400)
    if on_tags_page:
        return _tags_page(request, machine, tags_context, status=400)
    context = _machine_detail_context(request, machine, tags_context=tags_context)
    return _overview(request, machine, context, status=400)
