"""A machine's Run command page (Settings → Run command): a script box (bash or PowerShell per the machine's OS),
parameters, Run; the output appears when the agent reports (the output panel polls), with the history of earlier
runs. A run is a ``runCommands`` resource written through the service ARM uses (``machines.services``)."""

from __future__ import annotations

import secrets

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_safe

from arcportal import authz
from arcportal.exceptions import ApplicationError
from machines import selectors, services
from machines.forms_extensions import RunCommandForm
from machines.menu import is_fragment_request, render_machine_page
from machines.views_extensions import POLL_SECONDS, machine_refused
from machines.views_machine import _machine_or_404

RUN_COMMAND = "machines:machine-run-command"
RUNNING = ("Pending", "Running")
HISTORY = 20


def _language(machine) -> tuple[str, str]:
    """(label, placeholder) of the script box: PowerShell on Windows, bash elsewhere (as Azure's Run command)."""
    if (machine.os_type or machine.os_name or "").lower() == "windows":
        return "PowerShell script", 'Write-Output "Hello from $env:COMPUTERNAME"'
    return "Shell script (bash)", 'echo "Hello from $(hostname)"'


def _run_url(machine, run) -> str:
    group = machine.resource_group
    args = [group.subscription.subscription_id, group.name, machine.name, run.name]
    return reverse("machines:machine-run-command-detail", args=args)


def _run_context(machine, run) -> dict:
    running = run.execution_state in RUNNING and run.provisioning_state in ("Creating", "Updating")
    return {"run": run, "run_url": _run_url(machine, run), "polling": running, "poll_seconds": POLL_SECONDS}


def _history(machine) -> list:
    runs = sorted(selectors.run_command_list(machine=machine), key=lambda r: r.created_at, reverse=True)[:HISTORY]
    return [(item, _run_url(machine, item)) for item in runs]


def _body_context(machine, form: RunCommandForm, run=None) -> dict:
    label, placeholder = _language(machine)
    context = {
        "form": form,
        "script_label": label,
        "script_placeholder": placeholder,
        "run_command_url": machine.get_absolute_url("machine-run-command"),
        "history": _history(machine),
        "current": run,
    }
    if run is not None:
        context.update(_run_context(machine, run))
    return context


def _page(request, machine, form, run=None, *, status: int = 200) -> HttpResponse:
    context = _body_context(machine, form, run)
    if is_fragment_request(request):
        return render(
            request, "machines/partials/run_command_body.html", {"machine": machine, **context}, status=status
        )
    return render_machine_page(request, "machines/machine_run_command.html", machine=machine, active=RUN_COMMAND,
                               context=context, status=status)  # fmt: skip


def _new_run_name() -> str:
    return f"portal-{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@require_http_methods(["GET", "POST"])
def machine_run_command(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    """GET: the script box and the history. POST: run the script (a new ``runCommands`` resource); HTMX gets the
    page body with the run's output panel (which polls until the agent reports) and the run's URL pushed."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    if request.method == "GET":
        return _page(request, machine, RunCommandForm())
    form = RunCommandForm(request.POST)
    if not form.is_valid():
        return _page(request, machine, form, status=400)
    if not authz.can(request.user, authz.WRITE, machine.arm_id):
        return machine_refused(request, machine, active=RUN_COMMAND, action="write", what="run commands")
    try:
        result = services.run_command_create_or_update(
            machine=machine, name=_new_run_name(), properties=form.properties(), actor=request.user.get_username()
        )
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _page(request, machine, form, status=400)
    run = selectors.run_command_get(machine=machine, name=result.instance.name)
    if not is_fragment_request(request):
        return redirect(_run_url(machine, run))
    kept = RunCommandForm(initial={"script": run.script, "parameters": _parameter_text(run), "timeout_seconds":
                                   run.timeout_in_seconds or 600})  # fmt: skip
    response = _page(request, machine, kept, run)
    response["HX-Push-Url"] = _run_url(machine, run)
    return response


def _parameter_text(run) -> str:
    return "\n".join(f"{p['name']}={p['value']}" for p in run.parameters or [])


@require_safe
def machine_run_command_detail(
    request: HttpRequest, subscription_id: str, resource_group: str, name: str, run_name: str
) -> HttpResponse:
    """One run: its output panel (polled while it runs; the poll gets the panel only) next to the script box."""
    machine = _machine_or_404(subscription_id, resource_group, name)
    run = selectors.run_command_get(machine=machine, name=run_name)
    if run is None:
        raise Http404(f"{machine.name} has no run command named '{run_name}'.")
    if is_fragment_request(request) and request.htmx.target == "run-output":
        # The polled output panel; once the run ended, the history follows out of band (its state column).
        context = {**_run_context(machine, run), "current": run}
        if not context["polling"]:
            context.update(oob=True, history=_history(machine))
        return render(request, "machines/partials/run_command_output.html", context)
    initial = {
        "script": run.script,
        "parameters": _parameter_text(run),
        "timeout_seconds": run.timeout_in_seconds or 600,
    }
    return _page(request, machine, RunCommandForm(initial=initial), run)
