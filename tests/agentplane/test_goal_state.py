"""The goal-state channel against the real portal (in-process): ``GET …/goalstate``, ``POST …/extensions|runcommands/
{name}/status`` with request-bound machine JWTs made by the agent's own protocol module, and the ARM operations they
end (docs/extensions.md "The portal's half")."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
from azcmagent import identity, protocol
from django.utils import timezone

from machines.models import AsyncOperation, Extension, Machine, RunCommand
from machines.services import machine_issue_certificate, machine_register, resource_group_create
from tests.armclient import API, machine_path

pytestmark = pytest.mark.django_db

CSE = {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}


class Agent:
    """One onboarded machine as its agent sees it: key, thumbprint, vmId; signs requests as the agent does."""

    def __init__(self, client, group, name: str):
        self.client = client
        self.key = identity.new_key()
        self.vm_id = str(uuid.uuid4())
        result = machine_register(
            resource_group=group,
            name=name,
            location="westeurope",
            properties={"vmId": self.vm_id, "clientPublicKey": identity.public_key_b64(self.key)},
            onboarding_method="ServicePrincipal",
            onboarded_by="app",
        )
        issued = machine_issue_certificate(
            machine_id=result.instance.pk, public_key_b64=identity.public_key_b64(self.key)
        )
        self.thumbprint = issued.thumbprint
        self.machine = Machine.objects.get(pk=result.instance.pk)
        Machine.objects.filter(pk=self.machine.pk).update(last_heartbeat_at=timezone.now())  # Connected

    def token(self, method: str, path: str, body: bytes = b"", **options) -> str:
        return protocol.request_token(
            self.key, thumbprint=self.thumbprint, vm_id=self.vm_id, method=method, path=path, body=body, **options
        )

    def goal_state(self, etag: str | None = None, token: str | None = None):
        path = protocol.goal_state_path(self.vm_id)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token or self.token('GET', path)}"}
        if etag:
            headers["HTTP_IF_NONE_MATCH"] = etag
        return self.client.get(path, **headers)

    def report(self, kind: str, name: str, body: dict, *, raw: bytes | None = None, token: str | None = None):
        if kind == "extensions":
            path = protocol.extension_status_path(self.vm_id, name)
        else:
            path = protocol.run_command_status_path(self.vm_id, name)
        data = raw if raw is not None else protocol.encode_report(body)
        return self.client.post(
            path,
            data=data,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token or self.token('POST', path, data)}",
        )


@pytest.fixture
def group(subscription):
    return resource_group_create(subscription=subscription, name="rg", location="westeurope")


@pytest.fixture
def agent(client, group):
    return Agent(client, group, "web-01")


def _ext(subscription, name="CustomScript", machine="web-01"):
    return f"{machine_path(subscription, 'rg', machine)}/extensions/{name}?{API}"


def _status(arm, response):
    url = urlsplit(response["Azure-AsyncOperation"])
    return arm.get(f"{url.path}?{url.query}").json()


def test_install_is_handed_to_the_agent_with_an_envelope_only_it_opens(arm, subscription, agent, group, client):
    body = {"location": "westeurope", "properties": {**CSE, "settings": {"commandToExecute": "echo hi"},
                                                     "protectedSettings": {"secret": "hush-1234"}}}  # fmt: skip
    put = arm.put(_ext(subscription), body)
    assert put.status_code == 202 and put.json()["properties"]["provisioningState"] == "Creating"
    assert _status(arm, put)["status"] == "InProgress" and put["Retry-After"] == "1"

    answer = agent.goal_state()
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert b"hush-1234" not in answer.content
    goal = answer.json()
    assert goal["etag"] == answer["ETag"] and goal["nextPollSeconds"] == 30 and goal["runCommands"] == []
    [entry] = goal["extensions"]
    assert (entry["name"], entry["sequence"], entry["operation"]) == ("CustomScript", 1, "install")
    assert entry["settings"] == {"commandToExecute": "echo hi"}
    aad = protocol.envelope_aad(agent.vm_id, "extensions", "CustomScript", 1)
    opened = protocol.envelope_decrypt(agent.key, entry["protectedSettings"], aad=aad, kid=agent.thumbprint)
    assert opened == {"secret": "hush-1234"}
    other = Agent(client, group, "web-02")  # another machine's key, or another sequence, opens nothing
    with pytest.raises(protocol.ProtocolError):
        protocol.envelope_decrypt(other.key, entry["protectedSettings"], aad=aad)
    with pytest.raises(protocol.ProtocolError):
        protocol.envelope_decrypt(
            agent.key, entry["protectedSettings"], aad=protocol.envelope_aad(agent.vm_id, "extensions", "x", 1)
        )
    assert other.goal_state().json()["extensions"] == []  # and its goal state has nothing of web-01's

    assert agent.goal_state(etag=goal["etag"]).status_code == 304  # unchanged: no body
    report = protocol.extension_report(
        sequence=1, operation="install", state="Succeeded", message="Enable succeeded: hi", stdout=b"hi\n",
        exit_code=0, handler_version="2.1",
    )  # fmt: skip
    assert agent.report("extensions", "CustomScript", report).status_code == 200
    assert _status(arm, put)["status"] == "Succeeded"
    shown = arm.get(_ext(subscription)).json()["properties"]
    assert shown["provisioningState"] == "Succeeded"
    assert shown["instanceView"]["status"]["message"] == "Enable succeeded: hi"
    assert Extension.objects.get().last_report["substatuses"][0]["message"] == "hi\n"
    after = agent.goal_state(etag=goal["etag"])
    assert after.status_code == 200 and after.json()["extensions"][0]["protectedSettings"] is None  # done: no secret


def test_reports_of_another_sequence_unknown_names_and_bad_bodies_are_refused(arm, subscription, agent):
    arm.put(_ext(subscription), {"properties": {**CSE, "settings": {}}})
    arm.put(_ext(subscription), {"properties": {**CSE, "forceUpdateTag": "2"}})  # sequence 2
    stale = protocol.extension_report(sequence=1, operation="install", state="Succeeded", message="old")
    response = agent.report("extensions", "CustomScript", stale)
    assert response.status_code == 409 and response.json()["error"]["code"] == "StaleSequence"
    missing = agent.report("extensions", "Nope", {**stale, "sequence": 2})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    for bad in ({"sequence": 2, "state": "Exploded", "status": {}}, {"sequence": "2", "state": "Failed"}, [1]):
        refused = agent.report("extensions", "CustomScript", {}, raw=json.dumps(bad).encode())
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidRequestContent"
    huge = agent.report("extensions", "CustomScript", {}, raw=b'{"x": "' + b"a" * 70_000 + b'"}')
    assert huge.status_code == 413
    assert Extension.objects.get().provisioning_state == "Updating"  # nothing was recorded
    good = protocol.extension_report(sequence=2, operation="update", state="Failed", message="exit 1")
    assert agent.report("extensions", "CustomScript", good).status_code == 200
    again = agent.report("extensions", "CustomScript", good)
    assert again.status_code == 409  # a sequence is reported once


@pytest.mark.parametrize("case", ["wrong_method", "wrong_path", "no_binding", "other_key", "replayed", "body"])
def test_machine_tokens_are_bound_to_one_request_and_one_machine(agent, client, group, case):
    path = protocol.goal_state_path(agent.vm_id)
    if case == "wrong_method":
        token = agent.token("POST", path)
    elif case == "wrong_path":
        token = agent.token("GET", protocol.heartbeat_path(agent.vm_id))
    elif case == "no_binding":
        token = protocol.heartbeat_token(agent.key, thumbprint=agent.thumbprint, vm_id=agent.vm_id, body=b"")
    elif case == "other_key":
        other = Agent(client, group, "web-02")
        token = protocol.request_token(
            other.key, thumbprint=agent.thumbprint, vm_id=agent.vm_id, method="GET", path=path
        )
    elif case == "replayed":
        token = agent.token("GET", path)
        assert agent.goal_state(token=token).status_code == 200
    else:
        token = agent.token("GET", path, body=b"something")
    response = agent.goal_state(token=token)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] in {"InvalidToken", "InvalidSignature", "ReplayedToken", "BodyMismatch"}


def test_a_deleted_machine_gets_410_and_its_running_operation_ends_canceled(arm, subscription, agent):
    put = arm.put(_ext(subscription), {"properties": {**CSE}})
    assert arm.delete(f"{machine_path(subscription, 'rg', 'web-01')}?{API}").status_code == 204
    assert agent.goal_state().status_code == 410
    status = _status(arm, put)
    assert status["status"] == "Canceled" and status["error"]["code"] == "MachineDeleted"


def test_an_operation_the_agent_never_reports_fails_after_the_timeout(arm, subscription, agent, settings):
    settings.ARC_EXTENSION_TIMEOUT_SECONDS = 0
    put = arm.put(_ext(subscription), {"properties": {**CSE}})
    status = _status(arm, put)
    assert status["status"] == "Failed" and status["error"]["code"] == "OperationTimedOut"
    shown = arm.get(_ext(subscription)).json()["properties"]
    assert shown["provisioningState"] == "Failed" and "did not report" in shown["instanceView"]["status"]["message"]


def test_poll_interval_is_a_setting(agent, settings):
    settings.ARC_GOAL_STATE_SECONDS = 7
    assert agent.goal_state().json()["nextPollSeconds"] == 7


def _run(subscription, name="hello"):
    return f"{machine_path(subscription, 'rg', 'web-01')}/runCommands/{name}?{API}"


def test_a_run_command_goes_to_the_agent_and_its_report_fills_the_instance_view(arm, subscription, agent):
    body = {
        "location": "westeurope",
        "properties": {
            "source": {"script": "echo $GREETING"},
            "parameters": [{"name": "GREETING", "value": "hi"}],
            "protectedParameters": [{"name": "TOKEN", "value": "pp-secret-99"}],
            "timeoutInSeconds": 60,
            "runAsPassword": "never-stored",
        },
    }
    put = arm.put(_run(subscription), body)
    assert put.status_code == 201 and b"pp-secret-99" not in put.content and b"never-stored" not in put.content
    assert put.json()["properties"]["instanceView"]["executionState"] == "Pending"
    goal = agent.goal_state()
    assert b"pp-secret-99" not in goal.content
    [entry] = goal.json()["runCommands"]
    assert (entry["sequence"], entry["operation"], entry["source"]["script"]) == (1, "run", "echo $GREETING")
    aad = protocol.envelope_aad(agent.vm_id, "runCommands", "hello", 1)
    assert protocol.envelope_decrypt(agent.key, entry["protectedParameters"], aad=aad) == [
        {"name": "TOKEN", "value": "pp-secret-99"}
    ]
    running = protocol.run_command_report(sequence=1, state="Running")
    assert agent.report("runCommands", "hello", running).status_code == 200
    assert _status(arm, put)["status"] == "InProgress"
    done = protocol.run_command_report(sequence=1, state="Succeeded", stdout=b"hi\n\xff", exit_code=0)
    assert agent.report("runCommands", "hello", done).status_code == 200
    assert _status(arm, put)["status"] == "Succeeded"
    view = arm.get(_run(subscription)).json()["properties"]["instanceView"]
    assert view["executionState"] == "Succeeded" and view["exitCode"] == 0 and view["output"] == "hi\n\ufffd"
    assert view["startTime"].endswith("Z") and view["endTime"].endswith("Z")
    assert agent.goal_state().json()["runCommands"] == []  # reported: no longer listed
    assert [r["name"] for r in arm.get(f"{_run(subscription, '')[: -len('/?' + API)]}?{API}").json()["value"]] == [
        "hello"
    ]

    deleted = arm.delete(_run(subscription))
    assert deleted.status_code == 202
    [entry] = agent.goal_state().json()["runCommands"]
    assert (entry["sequence"], entry["operation"], entry["protectedParameters"]) == (2, "delete", None)
    gone = protocol.run_command_report(sequence=2, state="Canceled", message="The run command was deleted")
    assert agent.report("runCommands", "hello", gone).status_code == 200
    assert _status(arm, deleted)["status"] == "Succeeded" and not RunCommand.objects.exists()


def test_a_run_the_agent_lost_in_a_restart_fails_with_the_reason(arm, subscription, agent):
    put = arm.put(_run(subscription), {"properties": {"source": {"script": "sleep 600"}}})
    lost = protocol.run_command_report(
        sequence=1, state="Unknown", message="The agent restarted while the script was running"
    )
    assert agent.report("runCommands", "hello", lost).status_code == 200
    status = _status(arm, put)
    assert status["status"] == "Failed" and "restarted" in status["error"]["message"]
    assert arm.get(_run(subscription)).json()["properties"]["instanceView"]["executionState"] == "Unknown"


@pytest.mark.parametrize("what", ["script", "settings", "parameters"])
def test_more_than_256_kib_is_a_400_and_writes_nothing(arm, subscription, agent, what):
    big = "x" * (256 * 1024 + 1)
    if what == "settings":
        response = arm.put(_ext(subscription), {"properties": {**CSE, "settings": {"script": big}}})
    elif what == "script":
        response = arm.put(_run(subscription), {"properties": {"source": {"script": big}}})
    else:
        body = {"properties": {"source": {"script": "true"}, "parameters": [{"name": "A", "value": big}]}}
        response = arm.put(_run(subscription), body)
    assert response.status_code == 400, response.content
    assert "256 KiB" in response.json()["error"]["message"]
    assert not Extension.objects.exists() and not RunCommand.objects.exists() and not AsyncOperation.objects.exists()


def test_a_run_command_on_a_machine_that_is_not_connected_fails_at_once(arm, subscription, agent):
    Machine.objects.filter(pk=agent.machine.pk).update(last_heartbeat_at=None)
    put = arm.put(_run(subscription), {"properties": {"source": {"script": "true"}}})
    assert put.status_code == 201
    status = _status(arm, put)
    assert status["status"] == "Failed" and status["error"]["code"] == "MachineNotConnected"
    assert agent.goal_state().json()["runCommands"] == []  # never handed over
    bad = arm.put(_run(subscription), {"properties": {"source": {"script": "true"}, "parameters": [{"name": "1x"}]}})
    assert bad.status_code == 400 and "environment variable" in bad.json()["error"]["message"]
