"""The + Add → Generate script wizard as a form flow: its tabs, where each action leads, and what a failed
generation marks. The view (``onboarding.views.onboarding_generate``) only builds a ``Wizard`` and renders it.

The wizard is one URL. Its tabs (Basics → Tags → Download and run script) are one form: the fields of the other tabs
travel as hidden inputs, so Next/Previous keep what was entered, with HTMX (the form is swapped in place) or without
JavaScript (a normal POST answered with the full page). A service-principal secret never travels that way: a pasted
one waits server-side until the script is generated (``onboarding.wizard_secrets``), a new principal's is only in
the script of the response that created it.

Transitions (``Wizard.post``): going back never validates (invalid input is kept as typed); Next on Basics validates
Basics; Next on Tags validates both and generates. A generation refused by the services is a ``ScriptOptionError``
whose ``option`` names the field to mark (``OPTION_FIELDS``): errors are routed by type, never by their text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.http import HttpRequest

from onboarding import services, wizard_secrets
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

BASICS, TAGS, SCRIPT = "basics", "tags", "script"
STEPS = [(BASICS, "Basics"), (TAGS, "Tags"), (SCRIPT, "Download and run script")]
STEP_NAMES = [name for name, _ in STEPS]
TAG_ROW_FIELDS = ("tag_name", "tag_value")
TITLES = {MODE_SINGLE: "Add a server with Azure Arc", MODE_SCALE: "Add multiple servers with Azure Arc"}
NOT_CARRIED = {"csrfmiddlewaretoken", "step", "action", "mode", "service_principal_secret"}
# ScriptOptionError.option → the Basics field it marks (None: the form as a whole). The resource group's field
# depends on whether a new one was asked for.
OPTION_FIELDS = {"subscription": "subscription", "service_principal": "new_service_principal_name"}


@dataclass(frozen=True)
class Action:
    """What a POST asks for: ``kind`` is ``move`` (to ``target``), ``add_tag`` or ``remove_tag`` (row ``row``)."""

    kind: str
    target: str = BASICS
    row: int = -1

    @classmethod
    def parse(cls, *, action: str, step: str) -> Action:
        current = step if step in STEP_NAMES else BASICS
        if action == "add_tag":
            return cls("add_tag", TAGS)
        if action.startswith("remove_tag:") and action[11:].isdigit():
            return cls("remove_tag", TAGS, int(action[11:]))
        index = STEP_NAMES.index(current)
        if action == "previous":
            return cls("move", STEP_NAMES[max(index - 1, 0)])
        if action.startswith("goto:") and action[5:] in STEP_NAMES:
            return cls("move", action[5:])
        return cls("move", STEP_NAMES[min(index + 1, len(STEP_NAMES) - 1)])

    def backwards_from(self, step: str) -> bool:
        current = step if step in STEP_NAMES else BASICS
        return self.target == BASICS or STEP_NAMES.index(self.target) < STEP_NAMES.index(current)


class Wizard:
    """The state of one wizard request: forms bound to the posted data, the tab to show, errors per tab."""

    def __init__(self, request: HttpRequest, mode: str) -> None:
        self.request = request
        self.mode = mode if mode in TITLES else MODE_SINGLE
        self.data = request.POST.copy() if request.method == "POST" else None
        self.basics = BasicsForm(self.data, user=request.user, mode=self.mode)
        self.tags = TagsForm(self.data) if self.data is not None else TagsForm()
        self.step = BASICS
        self.show_errors: set[str] = set()
        self.generated: services.GeneratedScript | None = None

    # --- the state machine -----------------------------------------------------------------------------------

    def post(self) -> None:
        """One POST: the action of the submitted button, from the tab it was on."""
        assert self.data is not None
        step = self.data.get("step", BASICS)
        action = Action.parse(action=self.data.get("action") or "next", step=step)
        if action.kind == "add_tag":
            self.tags = TagsForm(self.data, extra_rows=1)
            self.step = TAGS
        elif action.kind == "remove_tag":
            self.tags = TagsForm(self.data, remove_row=action.row)
            self.step = TAGS
        elif action.backwards_from(step):
            self.step = action.target  # going back never validates: invalid input is kept as typed
        elif action.target == TAGS:
            if self._valid(BASICS):
                self.step = TAGS
        elif self._valid(BASICS) and self._valid(TAGS):
            self._generate()

    def _valid(self, step: str) -> bool:
        form = self.basics if step == BASICS else self.tags
        if form.is_valid():
            if step == BASICS:
                self._keep_pasted_secret()
            return True
        self._show(step)
        return False

    def _show(self, step: str) -> None:
        self.show_errors.add(step)
        self.step = step

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

    def _generate(self) -> None:
        basics, data = self.basics, self.basics.cleaned_data
        # The pasted secret, used for this one script and then forgotten (typed in this request, or kept).
        kept = wizard_secrets.secret_take(self.request.session, client_id=basics.service_principal_client_id)
        new_group = data["resource_group_mode"] == RG_NEW
        options = ScriptOptions(
            os=data["os"],
            subscription_id=str(data["subscription"].subscription_id),
            resource_group=basics.resource_group_name,
            location=data["location"],
            proxy_url=data["proxy_url"],
            tags=self.tags.cleaned_data["tags"],
            service_principal_id=basics.service_principal_client_id,
            service_principal_secret=data.get("service_principal_secret") or kept,
        )
        new_sp = self.mode == MODE_SCALE and data["sp_mode"] == SP_NEW
        try:
            self.generated = services.script_generation_create(
                options=options,
                subscription=data["subscription"],
                resource_group=basics.chosen_resource_group,
                user=self.request.user,
                create_resource_group=new_group,
                new_service_principal_name=data["new_service_principal_name"] if new_sp else "",
            )
        except services.ScriptOptionError as exc:
            field = self._field_of(exc.option, new_group=new_group)
            self.basics.add_error(field if field in self.basics.fields else None, exc.message)
            self._show(BASICS)
            return
        self._carry_generated()
        self.step = SCRIPT

    @staticmethod
    def _field_of(option: str | None, *, new_group: bool) -> str | None:
        if option == "resource_group":
            return "new_resource_group" if new_group else "resource_group"
        return OPTION_FIELDS.get(option or "")

    def _carry_generated(self) -> None:
        """After generation, Previous must not create the resource group or service principal a second time."""
        generated, data = self.generated, self.data
        assert generated is not None and data is not None
        if data.get("resource_group_mode") == RG_NEW:
            data["resource_group_mode"] = RG_EXISTING
            data["resource_group"] = generated.options.resource_group
        if self.mode == MODE_SCALE and data.get("sp_mode") == SP_NEW:
            # Its secret is in this response's script only: regenerating after Previous gives the placeholder.
            data["sp_mode"] = SP_EXISTING
            data["service_principal"] = generated.options.service_principal_id

    # --- what the page shows ---------------------------------------------------------------------------------

    @property
    def status(self) -> int:
        """400 when the page shows errors (invalid input, a scope the user may not use, a refused generation),
        like every other form of the portal; the form swaps a 400 in (``hx-on::before-swap``)."""
        return 400 if self.show_errors else 200

    def carried(self) -> list[tuple[str, str]]:
        """The posted fields that the shown tab does not render, as hidden inputs."""
        if self.data is None:
            return []
        shown: set[str] = set()
        if self.step == BASICS:
            shown = set(self.basics.fields)
        elif self.step == TAGS:
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
            "secret_kept": self.step == BASICS and self.mode == MODE_SCALE and self.secret_kept,
            "title": TITLES[self.mode],
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
