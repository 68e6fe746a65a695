"""Portal pages of onboarding: + Add, the Generate script wizard, and the onboarding errors list.

The wizard is one URL. Its tabs (Basics → Tags → Download and run script) are one form: the fields of the other
tabs travel as hidden inputs, so Next/Previous keep what was entered, with HTMX (the form is swapped in place) or
without JavaScript (a normal POST answered with the full page). A service-principal secret never travels that way:
a pasted one waits server-side until the script is generated (``onboarding.wizard_secrets``), a new principal's is
only in the script of the response that created it, and no page of the wizard may be cached (``never_cache``).
"""

from __future__ import annotations

import base64

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arcportal.exceptions import ApplicationError
from arcportal.htmx import is_partial
from onboarding import selectors, services, wizard_secrets
from onboarding.forms import (
    MODE_SCALE,
    MODE_SINGLE,
    PHYSICAL_TAGS,
    RG_EXISTING,
    RG_NEW,
    SP_EXISTING,
    SP_NEW,
    BasicsForm,
    TagsForm,
)
from onboarding.scripts import RUN_INSTRUCTIONS, ScriptOptions

STEPS = [("basics", "Basics"), ("tags", "Tags"), ("script", "Download and run script")]
STEP_NAMES = [name for name, _ in STEPS]
TAG_ROW_FIELDS = ("tag_name", "tag_value")
TITLES = {MODE_SINGLE: "Add a server with Azure Arc", MODE_SCALE: "Add multiple servers with Azure Arc"}
NOT_CARRIED = {"csrfmiddlewaretoken", "step", "action", "mode", "service_principal_secret"}


@require_GET
def onboarding_add(request: HttpRequest) -> HttpResponse:
    return render(request, "onboarding/add.html", {})


def _mode(request: HttpRequest) -> str:
    return MODE_SCALE if request.GET.get("mode") == MODE_SCALE else MODE_SINGLE


class Wizard:
    """The state of one wizard request: forms bound to the posted data, the tab to show, errors per tab."""

    def __init__(self, request: HttpRequest, mode: str) -> None:
        self.request = request
        self.mode = mode
        self.data = request.POST.copy() if request.method == "POST" else None
        self.basics = BasicsForm(self.data, mode=mode)
        self.tags = TagsForm(self.data) if self.data is not None else TagsForm()
        self.step = "basics"
        self.show_errors: set[str] = set()
        self.generated: services.GeneratedScript | None = None

    def rebuild_tags(self, **kwargs) -> None:
        self.tags = TagsForm(self.data, **kwargs)

    def valid(self, step: str) -> bool:
        form = self.basics if step == "basics" else self.tags
        if form.is_valid():
            if step == "basics":
                self._keep_pasted_secret()
            return True
        self.show_errors.add(step)
        self.step = step
        return False

    def _keep_pasted_secret(self) -> None:
        """A secret typed on Basics waits in the session (encrypted) instead of travelling in the page."""
        secret = self.basics.cleaned_data.get("service_principal_secret") or ""
        client_id = self.basics.service_principal_client_id
        if secret and client_id:
            wizard_secrets.secret_keep(self.request.session, client_id=client_id, secret=secret)

    @property
    def secret_kept(self) -> bool:
        client_id = self.basics.service_principal_client_id if self.basics.is_bound and self.basics.is_valid() else ""
        return bool(client_id) and wizard_secrets.secret_held(self.request.session, client_id=client_id)

    def generate(self) -> bool:
        basics, tags = self.basics, self.tags
        data = basics.cleaned_data
        # The pasted secret, used for this one script and then forgotten (typed in this request, or kept).
        kept = wizard_secrets.secret_take(self.request.session, client_id=basics.service_principal_client_id)
        options = ScriptOptions(
            os=data["os"],
            subscription_id=str(data["subscription"].subscription_id),
            resource_group=basics.resource_group_name,
            location=data["location"],
            proxy_url=data["proxy_url"],
            tags=tags.cleaned_data["tags"],
            service_principal_id=basics.service_principal_client_id,
            service_principal_secret=data.get("service_principal_secret") or kept,
        )
        new_sp_name = (
            data["new_service_principal_name"] if self.mode == MODE_SCALE and data["sp_mode"] == SP_NEW else ""
        )
        try:
            self.generated = services.script_generation_create(
                options=options,
                user=self.request.user,
                create_resource_group=data["resource_group_mode"] == RG_NEW,
                new_service_principal_name=new_sp_name,
            )
        except ApplicationError as exc:
            if exc.target in ("resource_group", None) and "resource group" in exc.message.lower():
                field = "new_resource_group" if data["resource_group_mode"] == RG_NEW else "resource_group"
            elif exc.target == "subscription":
                field = "subscription"
            else:
                field = None
            self.basics.add_error(field, exc.message)
            self.show_errors.add("basics")
            self.step = "basics"
            return False
        self._carry_generated()
        self.step = "script"
        return True

    def _carry_generated(self) -> None:
        """After generation, Previous must not create the resource group or service principal a second time."""
        generated = self.generated
        assert generated is not None and self.data is not None
        data = self.data
        if data.get("resource_group_mode") == RG_NEW:
            data["resource_group_mode"] = RG_EXISTING
            data["resource_group"] = generated.options.resource_group
        if self.mode == MODE_SCALE and data.get("sp_mode") == SP_NEW:
            # Its secret is in this response's script only: regenerating after Previous gives the placeholder.
            data["sp_mode"] = SP_EXISTING
            data["service_principal"] = generated.options.service_principal_id

    def carried(self) -> list[tuple[str, str]]:
        """The posted fields that the shown tab does not render, as hidden inputs."""
        if self.data is None:
            return []
        shown: set[str] = set()
        if self.step == "basics":
            shown = set(self.basics.fields)
        elif self.step == "tags":
            shown = set(self.tags.fields) | set(TAG_ROW_FIELDS)
        return [(key, value) for key in self.data for value in self.data.getlist(key) if key not in shown | NOT_CARRIED]

    def context(self) -> dict:
        context = {
            "mode": self.mode,
            "steps": STEPS,
            "step": self.step,
            "step_index": STEP_NAMES.index(self.step),
            "basics": self.basics,
            "tags_form": self.tags,
            "physical_tags": [self.tags[field] for field, _ in PHYSICAL_TAGS],
            "show_errors": self.show_errors,
            "show": self.step in self.show_errors,
            "carried": self.carried(),
            "secret_kept": self.step == "basics" and self.mode == MODE_SCALE and self.secret_kept,
            "title": "Add multiple servers with Azure Arc"
            if self.mode == MODE_SCALE
            else "Add a server with Azure Arc",
        }
        if self.generated is not None:
            script = self.generated.script
            context.update(
                generated=self.generated,
                script=script,
                script_data_url="data:application/octet-stream;base64,"
                + base64.b64encode(script.encode("utf-8")).decode("ascii"),
                filename=self.generated.filename,
                run_instruction=RUN_INSTRUCTIONS[self.generated.options.os],
                summary=self._summary(),
            )
        return context

    def _summary(self) -> list[tuple[str, str]]:
        assert self.generated is not None
        options = self.generated.options
        rows = self.basics.summary()
        if options.at_scale:
            secret = "included" if options.service_principal_secret else "placeholder: add it to the script"
            rows.append(("Service principal", f"{options.service_principal_id} (secret {secret})"))
        rows.append(("Tags", ", ".join(f"{k}: {v}" for k, v in options.tags.items()) or "None"))
        rows.append(("Correlation ID", str(self.generated.generation.correlation_id)))
        return rows


def _target(action: str, current: str) -> str:
    index = STEP_NAMES.index(current)
    if action == "previous":
        return STEP_NAMES[max(index - 1, 0)]
    if action.startswith("goto:") and action[5:] in STEP_NAMES:
        return action[5:]
    return STEP_NAMES[min(index + 1, len(STEP_NAMES) - 1)]


@never_cache
@require_http_methods(["GET", "POST"])
def onboarding_generate(request: HttpRequest) -> HttpResponse:
    wizard = Wizard(request, _mode(request))
    if request.method == "POST":
        current = request.POST.get("step") if request.POST.get("step") in STEP_NAMES else "basics"
        action = request.POST.get("action") or "next"
        if action == "add_tag":
            wizard.rebuild_tags(extra_rows=1)
            wizard.step = "tags"
        elif action.startswith("remove_tag:") and action[11:].isdigit():
            wizard.rebuild_tags(remove_row=int(action[11:]))
            wizard.step = "tags"
        else:
            target = _target(action, current)
            if target == "basics" or STEP_NAMES.index(target) < STEP_NAMES.index(current):
                wizard.step = target  # going back never validates, so it keeps invalid input as typed
            elif target == "tags":
                if wizard.valid("basics"):
                    wizard.step = "tags"
            elif wizard.valid("basics") and wizard.valid("tags"):
                wizard.generate()
    template = "onboarding/partials/wizard_form.html" if is_partial(request) else "onboarding/wizard.html"
    return render(request, template, wizard.context())


@require_GET
def onboarding_error_list(request: HttpRequest) -> HttpResponse:
    correlation_id = request.GET.get("correlation_id", "").strip()
    page = Paginator(selectors.onboarding_failure_list(correlation_id=correlation_id), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "onboarding/onboarding_error_list.html",
        {"page": page, "rows": selectors.onboarding_failure_rows(page.object_list), "correlation_id": correlation_id},
    )
