"""A machine's Extensions page (Settings → Extensions): the grid, + Add (catalogue → settings → Review + create),
Uninstall, and an extension's details. Writes go through the services ARM uses (``machines.services``), after
``arcportal.authz.can``; the agent carries them out over the goal-state channel and its reports show here."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from arcportal import authz
from arcportal.exceptions import ApplicationError
from machines import selectors, services
from machines.extension_catalogue import catalogue_for, catalogue_get, extension_properties
from machines.forms_extensions import ExtensionCreateForm, ExtensionUninstallForm
from machines.menu import is_fragment_request, render_machine_page
from machines.views_machine import _machine_or_404

EXTENSIONS = "machines:machine-extensions"
PENDING = ("Creating", "Updating", "Deleting")
POLL_SECONDS = 2  # while an operation runs, the grid and the details poll for the agent's report


def machine_refused(request: HttpRequest, machine, *, active: str, action: str, what: str) -> HttpResponse:
    """403 on the machine's layout, saying which permission is missing (``can()`` said no)."""
    message = f"You don't have permission to {what} on {machine.name} ({action} on its scope)."
    return render_machine_page(
        request, "machines/machine_refused.html", machine=machine, active=active, context={"message": message},
        status=403,
    )  # fmt: skip


def _grid_context(machine) -> dict:
    extensions = list(selectors.extension_list(machine=machine))
    return {
        "machine": machine,
        "extensions": extensions,
        "grid_url": machine.get_absolute_url("machine-extensions"),
        "polling": any(extension.provisioning_state in PENDING for extension in extensions),
        "poll_seconds": POLL_SECONDS,
    }


@require_safe
def machine_extensions(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """ "<name> | Extensions": the grid. Its Refresh and its polling (while an operation runs) get the grid only."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    context = _grid_context(machine)
    if is_fragment_request(request):
        return render(request, "machines/partials/extension_grid.html", context)
    return render_machine_page(request, "machines/machine_extensions.html", machine=machine, active=EXTENSIONS,
                               context=context)  # fmt: skip


@require_safe
def machine_extension_add(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """+ Add: the catalogue of the extension types this portal can run, those for the machine's OS first."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    context = {"catalogue": catalogue_for(machine.os_type or machine.os_name)}
    return render_machine_page(request, "machines/extension_catalogue.html", machine=machine, active=EXTENSIONS,
                               context=context, title="Extensions")  # fmt: skip


@require_http_methods(["GET", "POST"])
def machine_extension_create(
    request: HttpRequest, subscription_id: str, resource_group: str, name: str, type_key: str
) -> HttpResponse:
    """The settings form of one catalogue entry. POST ``action=review`` checks it and shows Review + create (the
    HTMX button swaps only the review panel, so the write-only fields keep their values in the browser);
    ``action=create`` writes the extension through the ARM service."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    entry = catalogue_get(type_key)
    if entry is None:
        raise Http404(f"The catalogue has no extension '{type_key}'.")
    existing = frozenset(extension.name for extension in selectors.extension_list(machine=machine))
    if request.method == "GET":
        form = ExtensionCreateForm(initial={"name": entry.type}, existing_names=existing)
        return _create_page(request, machine, entry, form)
    form = ExtensionCreateForm(request.POST, existing_names=existing)
    reviewing = request.POST.get("action") != "create"
    if not form.is_valid():
        if reviewing and is_fragment_request(request):
            return render(request, "machines/partials/extension_review.html", {"form": form, "entry": entry},
                          status=400)  # fmt: skip
        return _create_page(request, machine, entry, form, status=400)
    if reviewing:
        context = {"form": form, "entry": entry, "protected_keys": sorted(form.protected())}
        if is_fragment_request(request):
            return render(request, "machines/partials/extension_review.html", context)
        return _create_page(request, machine, entry, form, review=context)
    if not authz.can(request.user, authz.WRITE, machine.arm_id):
        return machine_refused(request, machine, active=EXTENSIONS, action="write", what="add extensions")
    properties = extension_properties(
        entry,
        command=form.cleaned_data["command_to_execute"],
        file_uris=form.cleaned_data["file_uris"],
        protected_settings=form.protected(),
        automatic_upgrade=form.cleaned_data["automatic_upgrade"],
    )
    try:
        services.extension_create_or_update(machine=machine, name=form.cleaned_data["name"], properties=properties)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _create_page(request, machine, entry, form, status=400)
    messages.success(request, f"Deployment of {entry.label} '{form.cleaned_data['name']}' to {machine.name} started.")
    return redirect(machine.get_absolute_url("machine-extensions"))


def _create_page(request, machine, entry, form, *, review: dict | None = None, status: int = 200) -> HttpResponse:
    context = {"entry": entry, "form": form, "review": review}
    return render_machine_page(request, "machines/extension_create.html", machine=machine, active=EXTENSIONS,
                               context=context, title="Extensions", status=status)  # fmt: skip


@require_POST
def machine_extension_uninstall(
    request: HttpRequest, subscription_id: str, resource_group: str, name: str
) -> HttpResponse:
    """Uninstall the selected extensions (the dialog confirmed it): the agent removes them, then the rows go."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    extensions = {extension.name: extension for extension in selectors.extension_list(machine=machine)}
    form = ExtensionUninstallForm(request.POST, names=list(extensions))
    if not form.is_valid():
        context = {**_grid_context(machine), "uninstall_errors": form.errors["extension"]}
        return render_machine_page(request, "machines/machine_extensions.html", machine=machine, active=EXTENSIONS,
                                   context=context, status=400)  # fmt: skip
    if not authz.can(request.user, authz.DELETE, machine.arm_id):
        return machine_refused(request, machine, active=EXTENSIONS, action="delete", what="uninstall extensions")
    chosen = form.cleaned_data["extension"]
    for extension_name in chosen:
        services.extension_delete(extension=extensions[extension_name])
    messages.success(request, f"Uninstalling {', '.join(chosen)} from {machine.name}.")
    return redirect(machine.get_absolute_url("machine-extensions"))


def extension_details(extension) -> dict:
    """What the details show, from the instance view and the agent's last report (``last_report``: status,
    substatuses with the stdout/stderr tails, exit code, start and end times)."""
    view = extension.instance_view or {}
    report = getattr(extension, "last_report", None) or view
    status = view.get("status") or report.get("status") or {}
    substatuses = report.get("substatuses") or view.get("substatuses") or []
    outputs = {"StdOut": "", "StdErr": ""}
    for item in substatuses:
        for stream in outputs:
            if f"/{stream}/" in str(item.get("code", "")):
                outputs[stream] = item.get("message") or ""
    return {
        "status": status,
        "substatuses": substatuses,
        "stdout": outputs["StdOut"],
        "stderr": outputs["StdErr"],
        "exit_code": report.get("exitCode"),
        "start_time": report.get("startTime") or "",
        "end_time": report.get("endTime") or "",
    }


@require_safe
def machine_extension_detail(
    request: HttpRequest, subscription_id: str, resource_group: str, name: str, extension_name: str
) -> HttpResponse:
    """One extension: status, substatus, message, the last output tails, start and end times (polled while an
    operation runs)."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    extension = selectors.extension_get(machine=machine, name=extension_name)
    if extension is None:
        if is_fragment_request(request):  # polled while it was being uninstalled: say so, and the polling stops
            return render(request, "machines/partials/extension_details.html", {"removed": extension_name})
        raise Http404(f"{machine.name} has no extension named '{extension_name}'.")
    url = reverse("machines:machine-extension-detail", args=[subscription_id, resource_group, name, extension.name])
    context = {
        "extension": extension,
        "details": extension_details(extension),
        "detail_url": url,
        "polling": extension.provisioning_state in PENDING,
        "poll_seconds": POLL_SECONDS,
    }
    if is_fragment_request(request):
        return render(request, "machines/partials/extension_details.html", context)
    return render_machine_page(request, "machines/extension_detail.html", machine=machine, active=EXTENSIONS,
                               context=context, title=f"Extensions › {extension.name}")  # fmt: skip
