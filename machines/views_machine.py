"""The machine Overview: properties, status badge (polled), tags edited in place, the status timeline, the activity
log, and the panels other apps add (``machines.panels``: onboarding's "Connected Machine agent")."""

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
from machines.panels import machine_panels
from machines.regions import display_name
from machines.views import request_now


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


def _tags_context(machine, *, formset=None, editing=False) -> dict:
    tags = selectors.machine_tags(machine)
    if editing and formset is None:
        formset = tag_formset(initial=tags, extra=3)
    return {
        "machine": machine,
        "tags": tags,
        "tag_formset": formset,
        "editing": editing,
        "tags_url": machine.get_absolute_url("machine-tags"),
        "detail_url": machine.get_absolute_url(),
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
    """ "<name> | Overview". An HTMX poll of the same URL gets only the status badge."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    if is_partial(request):
        (machine,) = selectors.machines_with_status(machines=[machine], now=request_now())
        context = {"machine": machine, "detail_url": machine.get_absolute_url()}
        context["refresh_seconds"] = settings.ARC_LIST_REFRESH_SECONDS
        return render(request, "machines/partials/machine_status_badge.html", context)
    return render(request, "machines/machine_detail.html", _machine_detail_context(request, machine))


@require_http_methods(["GET", "POST"])
def machine_tags(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """The Overview's tags, edited in place: GET ``?edit=1`` gives the editor, POST saves the whole set."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    if request.method == "GET":
        if not is_partial(request):
            suffix = "?edit_tags=1" if request.GET.get("edit") == "1" else ""
            return redirect(machine.get_absolute_url() + suffix)
        context = _tags_context(machine, editing=request.GET.get("edit") == "1")
        return render(request, "machines/partials/machine_tags.html", context)

    formset = tag_formset(data=request.POST, extra=0)
    if formset.is_valid():
        try:
            services.machine_update_tags(machine=machine, tags=formset.tags())
        except ApplicationError as exc:
            formset.non_form_errors().append(exc.message)
        else:
            machine = selectors.machine_get_by_id(pk=machine.pk)  # the prefetched tags are stale now
            if is_partial(request):
                return render(request, "machines/partials/machine_tags.html", _tags_context(machine))
            messages.success(request, f"Saved the tags of {machine.name}.")
            return redirect(machine.get_absolute_url())
    tags_context = _tags_context(machine, formset=formset, editing=True)
    if is_partial(request):
        return render(request, "machines/partials/machine_tags.html", tags_context, status=400)
    context = _machine_detail_context(request, machine, tags_context=tags_context)
    return render(request, "machines/machine_detail.html", context, status=400)
