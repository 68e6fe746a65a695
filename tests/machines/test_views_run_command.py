"""Settings → Run command: script box per OS, parameters, Run through the ARM service, the output when the agent
reports (polled), the history; bad input and refusals; protected parameters never shown."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from arcportal import authz
from machines import services
from machines.models import RunCommand
from tests.machines.factories import MachineFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

SECRET = "pr0tected-Param-value"
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "run-command-body"}


@pytest.fixture
def machine(subscription):
    group = ResourceGroupFactory(subscription=subscription, name="rg-run", location="westeurope")
    return MachineFactory(resource_group=group, name="web-1", os_name="linux", os_type="linux")


def url(machine, name="machine-run-command", *extra) -> str:
    group = machine.resource_group
    return reverse(f"machines:{name}", args=[group.subscription.subscription_id, group.name, machine.name, *extra])


def run_post(**fields) -> dict:
    return {"script": 'echo "hi $GREETING"', "parameters": "GREETING=world", "timeout_seconds": "120", **fields}


def test_script_box_is_bash_on_linux_and_powershell_on_windows(portal_client, machine, subscription):
    html = portal_client.get(url(machine)).content.decode()
    assert "web-1 | Run command</h1>" in html and "Shell script (bash)" in html and "No runs yet." in html
    group = machine.resource_group
    windows = MachineFactory(resource_group=group, name="win-1", os_name="windows", os_type="windows")
    assert "PowerShell script" in portal_client.get(url(windows)).content.decode()


def test_run_writes_a_run_command_through_the_arm_service(portal_client, machine, monkeypatch):
    calls = []
    original = services.run_command_create_or_update
    monkeypatch.setattr(services, "run_command_create_or_update", lambda **kw: calls.append(kw) or original(**kw))
    response = portal_client.post(url(machine), run_post(protected_parameters=f"TOKEN={SECRET}"))
    assert response.status_code == 302 and len(calls) == 1
    run = RunCommand.objects.get(machine=machine)
    assert response["Location"] == url(machine, "machine-run-command-detail", run.name)
    assert run.name.startswith("portal-") and run.script == 'echo "hi $GREETING"'
    assert run.parameters == [{"name": "GREETING", "value": "world"}] and run.timeout_in_seconds == 120
    assert run.created_by == "admin" and run.execution_state == "Pending" and run.provisioning_state == "Creating"
    assert services.run_command_protected_parameters(run_command=run) == [{"name": "TOKEN", "value": SECRET}]
    page = portal_client.get(response["Location"]).content.decode()
    assert SECRET not in page and 'hx-trigger="every 2s"' in page and "waiting for the agent" in page
    assert "echo &quot;hi $GREETING&quot;" in page  # the script stays in the box


def test_htmx_run_swaps_the_body_pushes_the_url_and_polls_until_the_agent_reports(portal_client, machine):
    response = portal_client.post(url(machine), run_post(), **HX)
    html = response.content.decode()
    run = RunCommand.objects.get(machine=machine)
    run_url = url(machine, "machine-run-command-detail", run.name)
    assert response.status_code == 200 and "<html" not in html and html.startswith('<div id="run-command-body"')
    assert response["HX-Push-Url"] == run_url
    assert f'hx-get="{run_url}" hx-trigger="every 2s"' in html and run.name in html  # output panel + history

    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "run-output"}
    assert portal_client.get(run_url, **poll).content.decode().startswith('<section id="run-output"')
    start = run.created_at
    report = {
        "sequence": run.sequence,
        "executionState": "Succeeded",
        "exitCode": 0,
        "output": "hi world\n",
        "error": "warn <x>",
        "executionMessage": "",
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(seconds=3)).isoformat(),
    }
    services.run_command_report_record(machine=machine, name=run.name, report=report)
    done = portal_client.get(run_url, **poll).content.decode()
    assert 'data-state="Succeeded"' in done and "hi world" in done and "warn &lt;x&gt;" in done
    assert "every 2s" not in done and '<dd class="run-exit-code">0</dd>' in done
    history = done.split('<section id="run-history"')[1]  # the history's state column follows, out of band
    assert history.startswith(' class="panel run-history" hx-swap-oob="true"') and "<td>Succeeded</td>" in history


def test_history_lists_earlier_runs_newest_first(portal_client, machine):
    for script in ("echo one", "echo two"):
        assert portal_client.post(url(machine), run_post(script=script)).status_code == 302
    first, second = RunCommand.objects.order_by("pk")
    RunCommand.objects.filter(pk=first.pk).update(created_at=second.created_at - timedelta(minutes=1))
    html = portal_client.get(url(machine)).content.decode()
    assert html.index(second.name) < html.index(first.name) and "echo two" not in html.split("History")[0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"script": "   "}, "Write the script to run."),
        ({"parameters": "1BAD=x"}, "Parameters, line 1: write NAME=value"),
        ({"parameters": "NOEQUALS"}, "Parameters, line 1: write NAME=value"),
        ({"parameters": "A=1\na=2"}, "&#x27;a&#x27; is given twice"),
        ({"parameters": "\n".join(f"P{i}=x" for i in range(21))}, "at most 20; 21 were given"),
        ({"protected_parameters": "GREETING=x"}, "GREETING is also a parameter."),
        ({"timeout_seconds": "0"}, "greater than or equal to 1"),
        ({"timeout_seconds": ""}, "Give a timeout in seconds"),
    ],
)
def test_bad_input_is_a_specific_400_and_runs_nothing(portal_client, machine, fields, message):
    for extra in ({}, HX):
        response = portal_client.post(url(machine), run_post(**fields), **extra)
        assert response.status_code == 400 and message in response.content.decode(), extra
    assert not RunCommand.objects.exists()


def test_protected_parameters_are_not_rendered_back_after_an_error(portal_client, machine):
    response = portal_client.post(url(machine), run_post(script="", protected_parameters=f"TOKEN={SECRET}"))
    assert response.status_code == 400 and SECRET not in response.content.decode()


def test_a_script_over_256_kib_is_refused(portal_client, machine):
    response = portal_client.post(url(machine), run_post(script="x" * (256 * 1024 + 1)))
    assert response.status_code == 400 and "longer than 262144 characters" in response.content.decode()
    assert not RunCommand.objects.exists()


def test_a_machine_that_is_not_connected_fails_the_run_at_once(portal_client, machine):
    machine.last_heartbeat_at = None
    machine.save()
    response = portal_client.post(url(machine), run_post())
    run = RunCommand.objects.get(machine=machine)
    assert run.execution_state == "Failed" and run.provisioning_state == "Failed"
    html = portal_client.get(response["Location"]).content.decode()
    assert 'data-state="Failed"' in html and "every 2s" not in html and escape(run.execution_message) in html


def test_users_without_write_permission_are_refused(portal_client, machine, monkeypatch):
    monkeypatch.setattr(authz, "can", lambda principal, action, scope: action == authz.READ)
    response = portal_client.post(url(machine), run_post())
    assert response.status_code == 403 and "permission to run commands on web-1" in response.content.decode()
    assert not RunCommand.objects.exists()


def test_run_command_pages_need_sign_in(client, machine):
    for page in (url(machine), url(machine, "machine-run-command-detail", "x")):
        response = client.get(page)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(url(machine), run_post()).status_code == 302 and not RunCommand.objects.exists()


def test_unknown_run_is_404(portal_client, machine):
    assert portal_client.get(url(machine, "machine-run-command-detail", "nope")).status_code == 404
