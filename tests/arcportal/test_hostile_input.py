"""Issue 10, item 17: hostile text thrown at every portal form and at every field of every ARM PUT/PATCH body.

The portal forms are found by walking the pages (every ``<form>`` of every page, every named field of each, with
the values the page itself filled in); the ARM body fields by walking the input serializers. Each field in turn gets
hypothesis-generated hostile text (NUL somewhere, more than ``textguard.MAX_FORM_TEXT`` characters, lone
surrogates and deep nesting in JSON) while the rest of the request stays valid. Every answer must be a 4xx and the
database must be exactly as before.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import pytest
from django.apps import apps
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from arcportal import textguard
from machines.api import serializers as s
from machines.api.serializers.extensions import MAX_SETTINGS_BYTES
from machines.api.serializers.run_commands import RunCommandPutInput
from tests.armclient import API, RG_API, ArmClient, machine_path, rg_path, user_token  # noqa: F401

pytestmark = pytest.mark.django_db

SETTINGS = settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
# Form-encoded text can't carry a lone surrogate (Django decodes bytes with U+FFFD), so forms get NUL and size.
printable = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
form_hostile = st.one_of(
    st.tuples(printable, printable).map(lambda p: p[0] + "\x00" + p[1]),
    st.integers(textguard.MAX_FORM_TEXT + 1, textguard.MAX_FORM_TEXT + 3000).map(lambda n: "é" * n),
)


def json_hostile_with(max_string: int):
    return st.one_of(
        form_hostile,
        st.tuples(printable, st.integers(0xD800, 0xDFFF)).map(lambda p: p[0] + chr(p[1])),  # a lone surrogate
        st.integers(max_string + 1, max_string + 100).map(lambda n: "x" * n),
        st.integers(textguard.MAX_JSON_DEPTH + 1, 200).map(lambda n: json.loads("[" * n + "]" * n)),
        st.just(10**40),
    )


json_hostile = json_hostile_with(textguard.MAX_JSON_STRING)
# Bodies that carry scripts and settings take strings up to 256 KiB (machines.api.serializers.extensions.check_size).
script_hostile = json_hostile_with(MAX_SETTINGS_BYTES)
# Form script boxes hold up to textguard.MAX_SCRIPT_TEXT (256 KiB): "too long" starts there for them.
form_script_hostile = st.one_of(
    st.tuples(printable, printable).map(lambda p: p[0] + "\x00" + p[1]),
    st.integers(textguard.MAX_SCRIPT_TEXT + 1, textguard.MAX_SCRIPT_TEXT + 3000).map(lambda n: "é" * n),
)


def fingerprint() -> dict[str, list]:
    """Every row of every project model (and users): "nothing written" means this is unchanged."""
    models = [*apps.get_app_config("machines").get_models(), *apps.get_app_config("onboarding").get_models()]
    models.append(apps.get_model("auth", "User"))
    return {m._meta.label: list(m.objects.order_by("pk").values_list()) for m in models}


@pytest.fixture
def world(subscription, user_token):  # noqa: F811
    """One of everything a portal page can show a form for."""
    from identity.device_codes import device_code_issue
    from identity.service_principals import service_principal_create
    from machines.webhooks import webhook_create

    arm = ArmClient(user_token)
    assert arm.put(f"{rg_path(subscription, 'rg-walk')}?{RG_API}", {"location": "eastus"}).status_code == 201
    machine = f"{machine_path(subscription, 'rg-walk', 'vm-walk')}?{API}"
    assert arm.put(machine, {"location": "eastus", "tags": {"env": "prod"}}).status_code == 200
    extension = f"{machine_path(subscription, 'rg-walk', 'vm-walk')}/extensions/ext-walk?{API}"
    assert arm.put(extension, {"location": "eastus", "properties": {"settings": {"a": "b"}}}).status_code == 202
    webhook = webhook_create(subscription=subscription, url="https://hooks.receiver.test/arc", created_by="admin")
    service_principal_create(
        display_name="sp-walk", role="Azure Connected Machine Onboarding", scope=subscription.arm_id
    )
    device_code_issue(client_id="agent", machine_name="vm-new", requesting_ip="192.0.2.1")
    return {"subscription": subscription, "webhook": webhook.webhook}


# --- Portal forms ---------------------------------------------------------------------------------------------


class FormCollector(HTMLParser):
    """Every ``<form>`` of a page: action (one per submit button's ``formaction``), method and the default value of
    each named field (fields outside the element that name it with ``form="…"`` included)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._by_id: dict[str, dict] = {}
        self._form: dict | None = None
        self._select: tuple[dict, str] | None = None
        self._early: dict[str, dict] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "fields": {},
                "formactions": [],
            }
            self.forms.append(self._form)
            if a.get("id"):
                self._by_id[a["id"]] = self._form
            return
        if a.get("form") and a["form"] not in self._by_id and a.get("name"):  # its form comes later in the page
            self._early.setdefault(a["form"], {}).setdefault(a["name"], a.get("value") or "")
            return
        form = self._by_id.get(a.get("form", "")) or self._form
        if form is None:
            return
        fields = form["fields"]
        if tag == "button" and a.get("formaction"):
            form["formactions"].append(a["formaction"])
        if tag == "option" and self._select:
            owner, name = self._select
            if "selected" in a or not owner["fields"].get(name):
                owner["fields"][name] = a.get("value", "")
        elif not a.get("name"):
            return
        elif tag == "input" and a.get("type") in ("radio", "checkbox"):
            if "checked" in a or a["name"] not in fields:
                fields[a["name"]] = a.get("value", "on")
        elif tag in ("input", "textarea", "button"):
            fields.setdefault(a["name"], a.get("value") or "")
        elif tag == "select":
            self._select = (form, a["name"])
            fields.setdefault(a["name"], "")

    def close(self):
        super().close()
        for form_id, fields in self._early.items():
            if form_id in self._by_id:
                self._by_id[form_id]["fields"] = {**fields, **self._by_id[form_id]["fields"]}

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def portal_pages(world) -> list[str]:
    sub = world["subscription"].subscription_id
    machine = f"/portal/subscriptions/{sub}/resourceGroups/rg-walk/providers/Microsoft.HybridCompute/machines/vm-walk"
    return [
        "/",
        "/portal/resourcegroups?create=1",
        f"{machine}?edit_tags=1",
        f"{machine}/tags?edit=1",
        f"{machine}/extensions",
        f"{machine}/extensions:add/custom-script-linux",
        f"{machine}/extensions:add/custom-script-windows",
        f"{machine}/runcommand",
        f"/portal/subscriptions/{sub}/resourceGroups/rg-walk/delete",
        "/portal/webhooks",
        f"/portal/webhooks/{world['webhook'].pk}",
        "/portal/serviceprincipals",
        "/portal/add/generate",
        "/portal/add/generate?mode=scale",
        "/portal/onboarding-errors",
        "/devicelogin",
    ]


def collect_forms(client, world) -> list[tuple[str, str, dict]]:
    found = []
    for page in portal_pages(world):
        response = client.get(page)
        assert response.status_code == 200, page
        collector = FormCollector()
        collector.feed(response.content.decode())
        collector.close()
        for form in collector.forms:
            fields = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
            for action in form["formactions"] or [form["action"]]:
                if fields:
                    found.append((urljoin(page, action) if action else page, form["method"], fields))
    return found


def test_hostile_text_in_every_portal_form_field_is_a_4xx_and_writes_nothing(admin_user, world):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    forms = collect_forms(client, world)
    walked = {(action.split("?")[0], name) for action, _, fields in forms for name in fields}
    assert len(forms) >= 10 and len(walked) >= 40, walked  # the walk found the portal's forms
    assert {"script", "parameters", "command_to_execute", "protected_settings", "extension"} <= {n for _, n in walked}
    before = fingerprint()
    failures: list[str] = []

    def attack(action: str, method: str, fields: dict, name: str):
        @given(text=form_script_hostile if name in textguard.SCRIPT_FORM_FIELDS else form_hostile)
        @SETTINGS
        def hostile(text):
            data = {**fields, name: text}
            if method == "post":
                body = urlencode(data, doseq=True)
                response = client.post(action, data=body, content_type="application/x-www-form-urlencoded")
            else:
                response = client.get(f"{action.split('?')[0]}?{urlencode(data)}")
            if not 400 <= response.status_code < 500:
                failures.append(f"{method.upper()} {action} {name}={text[:30]!r}: {response.status_code}")

        hostile()

    for action, method, fields in forms:
        for name in fields:
            attack(action, method, fields, name)
    assert not failures, "\n".join(failures[:10])
    assert fingerprint() == before


# --- ARM PUT/PATCH bodies -------------------------------------------------------------------------------------


def field_paths(serializer: serializers.Serializer, prefix: tuple = ()) -> list[tuple]:
    """Every path into a body the serializer reads; ``"*"`` stands for a key of a free-form object."""
    paths = []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        path = (*prefix, name)
        if isinstance(field, serializers.Serializer):
            paths += field_paths(field, path)
        elif isinstance(field, serializers.DictField | s.TagsField):
            paths += [path, (*path, "*"), (*path, "*key*")]
        else:
            paths.append(path)
    return paths


def body_with(base: dict, path: tuple, value) -> dict:
    body = json.loads(json.dumps(base))
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict) or part not in node else {}
    last = path[-1]
    if last == "*key*":
        node[value if isinstance(value, str) else "k"] = "v" if isinstance(value, str) else value
    elif last == "*":
        node["k"] = value
    else:
        node[last] = value
    return body


def arm_operations(subscription) -> list[tuple[str, str, type, dict]]:
    rg = f"{rg_path(subscription, 'rg-walk')}?{RG_API}"
    machine = f"{machine_path(subscription, 'rg-walk', 'vm-walk')}?{API}"
    extension = f"{machine_path(subscription, 'rg-walk', 'vm-walk')}/extensions/ext-walk?{API}"
    run_command = f"{machine_path(subscription, 'rg-walk', 'vm-walk')}/runCommands/run-walk?{API}"
    where = {"location": "eastus"}
    return [
        ("PUT", rg, s.ResourceGroupPutInput, where),
        ("PATCH", rg, s.ResourceGroupPatchInput, {}),
        ("PUT", machine, s.MachinePutInput, where),
        ("PATCH", machine, s.MachinePatchInput, {}),
        ("PUT", extension, s.ExtensionPutInput, where),
        ("PATCH", extension, s.ExtensionPatchInput, {}),
        ("PUT", run_command, RunCommandPutInput, {**where, "properties": {"source": {"script": "true"}}}),
    ]


def test_hostile_json_in_every_arm_put_and_patch_field_is_a_400_and_writes_nothing(world, user_token):  # noqa: F811
    arm = ArmClient(user_token)
    arm.client = Client(raise_request_exception=False)
    operations = arm_operations(world["subscription"])
    before = fingerprint()
    failures: list[str] = []
    count = 0

    def attack(method: str, url: str, base: dict, path: tuple):
        @given(value=json_hostile)
        @SETTINGS
        def hostile(value):
            raw = json.dumps(body_with(base, path, value))
            response = arm.request(method, url, raw=raw)
            if not (response.status_code in (400, 413) and "error" in response.json()):
                failures.append(f"{method} {'.'.join(path)}={str(value)[:30]!r}: {response.status_code}")

        hostile()

    def attack_script_body(method: str, url: str, base: dict, path: tuple):
        @given(value=script_hostile)
        @SETTINGS
        def hostile_in_script_body(value):
            raw = json.dumps(body_with(base, path, value))
            response = arm.request(method, url, raw=raw)
            if not (response.status_code in (400, 413) and "error" in response.json()):
                failures.append(f"{method} {'.'.join(path)}={str(value)[:30]!r}: {response.status_code}")

        hostile_in_script_body()

    for method, url, serializer_class, base in operations:
        scripts = "/extensions/" in url or "/runCommands/" in url  # strings up to 256 KiB are fine there
        for path in field_paths(serializer_class()):
            count += 1
            (attack_script_body if scripts else attack)(method, url, base, path)
    assert count >= 80, count  # every field of the seven bodies was walked
    assert not failures, "\n".join(failures[:10])
    assert fingerprint() == before
