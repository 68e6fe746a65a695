"""Settings → Extensions: the grid, + Add (catalogue → settings → Review + create), Uninstall, an extension's details.
Writes go through machines.services (the ARM rule); protected settings never come back in any response."""

import re

import pytest
from django.urls import reverse

from arcportal import authz
from machines import services
from machines.models import Extension
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Pr0tected-value"
REVIEW = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "extension-review"}


@pytest.fixture
def machine(subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-ext", location="westeurope")
    return MachineFactory(resource_group=group, name="web-1", os_name="linux", os_type="linux")


def url(machine, name: str, *extra) -> str:
    group = machine.resource_group
    return reverse(f"machines:{name}", args=[group.subscription.subscription_id, group.name, machine.name, *extra])


def extension(machine, name="CustomScript", **fields) -> Extension:
    values = {
        "publisher": "Microsoft.Azure.Extensions",
        "type": "CustomScript",
        "type_handler_version": "2.1",
        "location": machine.location,
        "provisioning_state": "Succeeded",
    }
    return Extension.objects.create(machine=machine, name=name, **{**values, **fields})


class Spy:
    def __init__(self, func):
        self.func, self.calls = func, []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.func(*args, **kwargs)


def spy_on(monkeypatch, owner, name: str) -> Spy:
    spy = Spy(getattr(owner, name))
    monkeypatch.setattr(owner, name, spy)
    return spy


def linux_post(**fields) -> dict:
    return {"name": "hello", "command_to_execute": "echo hello", "file_uris": "", **fields}


# --- Grid -----------------------------------------------------------------------------------------------------


def test_grid_lists_extensions_with_azures_columns(portal_client, machine):
    extension(machine, enable_automatic_upgrade=True)
    extension(machine, name="Other", publisher="Contoso", type="Thing", provisioning_state="Failed")
    response = portal_client.get(url(machine, "machine-extensions"))
    html = response.content.decode()
    assert response.status_code == 200 and "web-1 | Extensions</h1>" in html
    head = re.search(r"<thead>.*?</thead>", html, re.S).group(0)
    assert [re.sub(r"<[^>]+>", "", th) for th in re.findall(r"<th [^>]*>(.*?)</th>", head)][1:] == [
        "Name", "Type", "Publisher", "Version", "Status", "Automatic upgrade",
    ]  # fmt: skip
    row = re.search(r'<tr id="extension-customscript".*?</tr>', html, re.S).group(0)
    for cell in ("CustomScript", "Microsoft.Azure.Extensions", "2.1", "Succeeded", "Enabled"):
        assert cell in row
    assert f'href="{url(machine, "machine-extension-detail", "CustomScript")}"' in row
    assert "every 2s" not in html  # nothing running: no polling


def test_grid_polls_while_an_operation_runs_and_refresh_gets_the_grid_only(portal_client, machine):
    extension(machine, provisioning_state="Creating")
    grid = portal_client.get(
        url(machine, "machine-extensions"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="extension-grid"
    )
    html = grid.content.decode()
    assert html.startswith('<div id="extension-grid"') and "<html" not in html and 'hx-trigger="every 2s"' in html


def test_catalogue_offers_both_custom_scripts_the_machines_os_first(portal_client, machine):
    html = portal_client.get(url(machine, "machine-extension-add")).content.decode()
    linux, windows = html.index("Custom Script for Linux"), html.index("Custom Script Extension for Windows")
    assert linux < windows
    assert url(machine, "machine-extension-create", "custom-script-linux") in html
    assert url(machine, "machine-extension-create", "custom-script-windows") in html
    assert portal_client.get(url(machine, "machine-extension-create", "nope")).status_code == 404


# --- + Add: settings, Review + create -------------------------------------------------------------------------


def test_review_shows_a_summary_without_protected_values(portal_client, machine):
    target = url(machine, "machine-extension-create", "custom-script-linux")
    form = portal_client.get(target).content.decode()
    assert 'value="CustomScript"' in form and "Review + create" in form
    data = linux_post(protected_settings=f'{{"storageAccountKey": "{SECRET}"}}', action="review")
    review = portal_client.post(target, data, **REVIEW)
    html = review.content.decode()
    assert review.status_code == 200 and "<html" not in html and "echo hello" in html
    assert "storageAccountKey (hidden)" in html and SECRET not in html
    assert 'name="action" value="create"' in html
    assert not Extension.objects.exists()  # a review writes nothing


def test_create_writes_through_the_arm_service_and_never_echoes_protected_settings(portal_client, machine, monkeypatch):
    spy = spy_on(monkeypatch, services, "extension_create_or_update")
    target = url(machine, "machine-extension-create", "custom-script-linux")
    data = linux_post(
        command_to_execute="",
        protected_command=f"echo {SECRET}",
        file_uris="https://example.com/a.sh\nhttps://example.com/b.sh",
        automatic_upgrade="on",
        action="create",
    )
    response = portal_client.post(target, data)
    assert response.status_code == 302 and response["Location"] == url(machine, "machine-extensions")
    assert len(spy.calls) == 1
    created = Extension.objects.get(machine=machine, name="hello")
    assert (created.publisher, created.type, created.type_handler_version) == (
        "Microsoft.Azure.Extensions", "CustomScript", "2.1",
    )  # fmt: skip
    assert created.settings == {"fileUris": ["https://example.com/a.sh", "https://example.com/b.sh"]}
    assert created.enable_automatic_upgrade is True
    assert SECRET not in created.protected_settings_encrypted
    assert services.extension_protected_settings(extension=created) == {"commandToExecute": f"echo {SECRET}"}
    for page in (url(machine, "machine-extensions"), url(machine, "machine-extension-detail", "hello")):
        assert SECRET not in portal_client.get(page).content.decode()


def test_windows_custom_script_has_its_own_type(portal_client, machine):
    target = url(machine, "machine-extension-create", "custom-script-windows")
    response = portal_client.post(target, linux_post(name="win", command_to_execute="dir", action="create"))
    assert response.status_code == 302
    created = Extension.objects.get(name="win")
    assert (created.publisher, created.type) == ("Microsoft.Compute", "CustomScriptExtension")
    assert created.settings == {"commandToExecute": "dir"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "bad name"}, "1 to 64 characters of letters"),
        ({"name": "Existing"}, "already has an extension named"),
        ({"command_to_execute": ""}, "Give the command to run"),
        ({"protected_command": "x"}, "Give the command once"),
        ({"file_uris": "http://example.com/a.sh"}, "is not an https:// URL"),
        ({"file_uris": "\n".join(f"https://e.com/{i}" for i in range(21))}, "At most 20 file URIs"),
        ({"protected_settings": "[1]"}, "must be a JSON object"),
        ({"protected_settings": "{nope"}, "must be a JSON object: Expecting property name"),
        ({"command_to_execute": "x" * (256 * 1024 + 1)}, "longer than 262144 characters"),
    ],
)
def test_bad_settings_are_specific_400s_and_write_nothing(portal_client, machine, fields, message):
    extension(machine, name="existing")
    target = url(machine, "machine-extension-create", "custom-script-linux")
    for action, extra in (("create", {}), ("review", REVIEW)):
        data = linux_post(**{**fields, "protected_settings": fields.get("protected_settings", "")}, action=action)
        data["protected_settings"] = data["protected_settings"] or ""
        if "protected_command" not in fields:
            data["protected_command"] = ""
        response = portal_client.post(target, data, **extra)
        html = response.content.decode()
        assert response.status_code == 400 and message.replace("'", "&#x27;") in html, (action, html[-2000:])
    assert list(Extension.objects.values_list("name", flat=True)) == ["existing"]


def test_protected_values_are_not_rendered_back_after_an_error(portal_client, machine):
    target = url(machine, "machine-extension-create", "custom-script-linux")
    data = linux_post(protected_command=SECRET, protected_settings=f'{{"key": "{SECRET}"}}', action="create")
    response = portal_client.post(target, data)  # "Give the command once": re-rendered with the error
    assert response.status_code == 400 and SECRET not in response.content.decode()


def test_a_script_over_256_kib_is_refused_at_the_edge(portal_client, machine):
    target = url(machine, "machine-extension-create", "custom-script-linux")
    response = portal_client.post(target, linux_post(command_to_execute="x" * (300 * 1024), action="create"))
    assert response.status_code == 400 and not Extension.objects.exists()


def test_users_without_write_permission_are_refused(portal_client, machine, monkeypatch):
    extension(machine)
    monkeypatch.setattr(authz, "can", lambda principal, action, scope: action == authz.READ)
    target = url(machine, "machine-extension-create", "custom-script-linux")
    response = portal_client.post(target, linux_post(action="create"))
    assert response.status_code == 403 and "permission to add extensions on web-1" in response.content.decode()
    uninstall = portal_client.post(url(machine, "machine-extension-uninstall"), {"extension": ["CustomScript"]})
    assert uninstall.status_code == 403 and "permission to uninstall extensions" in uninstall.content.decode()
    assert list(Extension.objects.values_list("name", "provisioning_state")) == [("CustomScript", "Succeeded")]


# --- Uninstall ------------------------------------------------------------------------------------------------


def test_uninstall_selected_goes_through_the_arm_service(portal_client, machine, monkeypatch):
    spy = spy_on(monkeypatch, services, "extension_delete")
    extension(machine, name="one")
    extension(machine, name="two")
    response = portal_client.post(url(machine, "machine-extension-uninstall"), {"extension": ["one"]})
    assert response.status_code == 302 and response["Location"] == url(machine, "machine-extensions")
    assert len(spy.calls) == 1 and spy.calls[0]["extension"].name == "one"
    left = dict(Extension.objects.values_list("name", "provisioning_state"))
    assert left.get("two") == "Succeeded" and left.get("one", "Deleting") == "Deleting"


@pytest.mark.parametrize(
    ("data", "message"),
    [({}, "Select the extensions to uninstall."), ({"extension": ["ghost"]}, "ghost is not an extension of")],
)
def test_uninstall_needs_a_real_selection(portal_client, machine, data, message):
    extension(machine)
    response = portal_client.post(url(machine, "machine-extension-uninstall"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert Extension.objects.filter(name="CustomScript", provisioning_state="Succeeded").exists()


def test_uninstall_is_post_only_and_asks_first(portal_client, machine):
    assert portal_client.get(url(machine, "machine-extension-uninstall")).status_code == 405
    html = portal_client.get(url(machine, "machine-extensions")).content.decode()
    assert 'id="uninstall-dialog"' in html and "Do you want to uninstall them?" in html


# --- Details --------------------------------------------------------------------------------------------------


def test_details_show_status_substatus_message_output_and_times(portal_client, machine):
    status = {"code": "ProvisioningState/failed", "level": "Error", "displayStatus": "Provisioning failed",
              "message": "Exit code 3", "time": "2026-01-02T03:04:05Z"}  # fmt: skip
    report = {
        "status": status,
        "substatuses": [
            {"code": "ComponentStatus/StdOut/failed", "level": "Info", "displayStatus": "x", "message": "hello out"},
            {"code": "ComponentStatus/StdErr/failed", "level": "Info", "displayStatus": "x", "message": "oops <b>"},
        ],
        "exitCode": 3,
        "startTime": "2026-01-02T03:04:00Z",
        "endTime": "2026-01-02T03:04:05Z",
    }
    ext = extension(machine, provisioning_state="Failed", instance_view={"status": status})
    if hasattr(ext, "last_report"):
        ext.last_report = report
        ext.save()
    else:  # before the goal-state channel stores the agent's report, the instance view carries the substatuses
        ext.instance_view = {**report}
        ext.save()
    html = portal_client.get(url(machine, "machine-extension-detail", "customscript")).content.decode()
    assert "web-1 | Extensions › CustomScript</h1>" in html
    for text in ("Provisioning failed", "ProvisioningState/failed", "Exit code 3", "hello out", "oops &lt;b&gt;",
                 "2026-01-02T03:04:00Z", "ComponentStatus/StdErr/failed"):  # fmt: skip
        assert text in html, text
    assert portal_client.get(url(machine, "machine-extension-detail", "ghost")).status_code == 404
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "extension-details"}
    gone = portal_client.get(url(machine, "machine-extension-detail", "ghost"), **poll)  # uninstalled while polled
    assert (
        gone.status_code == 200
        and "was uninstalled" in gone.content.decode()
        and "hx-trigger" not in gone.content.decode()
    )


def test_extension_pages_need_sign_in(client, machine):
    extension(machine)
    for page in (
        url(machine, "machine-extensions"),
        url(machine, "machine-extension-add"),
        url(machine, "machine-extension-create", "custom-script-linux"),
        url(machine, "machine-extension-detail", "CustomScript"),
    ):
        response = client.get(page)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], page
    response = client.post(url(machine, "machine-extension-uninstall"), {"extension": ["CustomScript"]})
    assert response.status_code == 302 and Extension.objects.filter(provisioning_state="Succeeded").count() == 1


def test_menu_shows_extensions_under_settings(portal_client, machine):
    html = portal_client.get(machine.get_absolute_url()).content.decode()
    assert f'href="{url(machine, "machine-extensions")}"' in html
