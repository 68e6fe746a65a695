"""``azcmagent.protocol`` and ``azcmagent.goalstate``: the wire helpers of the agent, the simulator and the portal."""

from __future__ import annotations

import base64
import copy
import json
import time

import jwt
import pytest
from azcmagent import identity, protocol
from azcmagent.goalstate import parse_goal_state
from hypothesis import given
from hypothesis import strategies as st

THUMBPRINT = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
VM_ID = "f0e1d2c3-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def key():
    return identity.new_key()


def _decode(token, key, **options):
    return jwt.decode_complete(token, key.public_key(), algorithms=["RS256"], options={"verify_aud": False}, **options)


def test_a_request_token_is_bound_to_method_path_and_body(key):
    path = protocol.extension_status_path(VM_ID, "CustomScript")
    token = protocol.request_token(
        key, thumbprint=THUMBPRINT, vm_id=VM_ID, method="post", path=path + "?x=1", body=b'{"a":1}'
    )
    decoded = _decode(token, key)
    claims = decoded["payload"]
    assert claims["htm"] == "POST" and claims["htu"] == f"/his/machines/{VM_ID}/extensions/CustomScript/status"
    assert claims["sub"] == claims["vmId"] == VM_ID
    assert claims["bodySha256"] == protocol.body_sha256(b'{"a":1}') != protocol.body_sha256(b"")
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"] and claims["jti"]
    assert decoded["header"]["x5t"] == base64.urlsafe_b64encode(bytes.fromhex(THUMBPRINT)).rstrip(b"=").decode()
    assert decoded["header"]["alg"] == "RS256"
    other = protocol.request_token(key, thumbprint=THUMBPRINT, vm_id=VM_ID, method="POST", path=path)
    assert _decode(other, key)["payload"]["jti"] != claims["jti"]


def test_an_empty_body_hashes_the_empty_string(key):
    token = protocol.request_token(
        key, thumbprint=THUMBPRINT, vm_id=VM_ID, method="GET", path=protocol.goal_state_path(VM_ID)
    )
    claims = _decode(token, key)["payload"]
    assert claims["bodySha256"] == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    assert claims["htm"] == "GET" and claims["htu"] == f"/his/machines/{VM_ID}/goalstate"


def test_the_heartbeat_token_keeps_its_old_shape(key):
    body = b'{"agentVersion":"1.50.0"}'
    for token in (
        protocol.heartbeat_token(key, thumbprint=THUMBPRINT, vm_id=VM_ID, body=body, now=1000, jti="j"),
        identity.heartbeat_token(key, thumbprint=THUMBPRINT, vm_id=VM_ID, body=body, now=1000, jti="j"),
    ):
        claims = _decode(token, key, leeway=10**10)["payload"]
        assert claims == {
            "sub": VM_ID,
            "vmId": VM_ID,
            "iat": 1000,
            "nbf": 1000,
            "exp": 1300,
            "jti": "j",
            "bodySha256": protocol.body_sha256(body),
        }


def test_a_client_assertion_names_the_identity_and_the_token_endpoint(key):
    audience = "https://portal.test/tenant-1/oauth2/v2.0/token"
    now = time.time()
    token = protocol.client_assertion(key, thumbprint=THUMBPRINT, client_id="principal-1", audience=audience, now=now)
    decoded = jwt.decode_complete(token, key.public_key(), algorithms=["RS256"], audience=audience)
    claims = decoded["payload"]
    assert claims["iss"] == claims["sub"] == "principal-1" and claims["aud"] == audience
    assert claims["exp"] - claims["iat"] == 600 and claims["jti"]
    assert decoded["header"]["x5t"] == protocol.x5t(THUMBPRINT)


# --- envelopes --------------------------------------------------------------------------------------------------

SECRET = {"commandToExecute": "echo hush-hush-7f3a", "fileUris": ["https://portal.test/f.sh"]}


def _aad(**changes):
    parts = {"vm_id": VM_ID, "kind": "extensions", "name": "CustomScript", "sequence": 3} | changes
    return protocol.envelope_aad(parts["vm_id"], parts["kind"], parts["name"], parts["sequence"])


def test_an_envelope_round_trips_and_holds_no_plaintext(key):
    envelope = protocol.envelope_encrypt(key.public_key(), SECRET, aad=_aad(), kid=THUMBPRINT)
    assert set(envelope) == {"alg", "kid", "key", "iv", "ciphertext"}
    assert envelope["alg"] == "RSA-OAEP-256+A256GCM" and envelope["kid"] == THUMBPRINT.lower()
    assert len(base64.b64decode(envelope["iv"])) == 12 and len(base64.b64decode(envelope["key"])) == 256
    assert "hush-hush" not in json.dumps(envelope)
    assert protocol.envelope_decrypt(key, envelope, aad=_aad(), kid=THUMBPRINT) == SECRET
    assert _aad() == f"{VM_ID}/extensions/CustomScript/3".encode()


def test_an_envelope_from_the_public_key_in_registration_form(key):
    public = protocol.public_key_from_b64(identity.public_key_b64(key))
    envelope = protocol.envelope_encrypt(public, {"A": "1"}, aad=_aad(kind="runCommands"), kid="ab")
    assert protocol.envelope_decrypt(key, envelope, aad=_aad(kind="runCommands")) == {"A": "1"}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_machine", "does not authenticate"),
        ("other_name", "does not authenticate"),
        ("other_sequence", "does not authenticate"),
        ("other_kind", "does not authenticate"),
        ("tampered", "does not authenticate"),
        ("other_key", "does not decrypt"),
        ("other_kid", "another certificate"),
        ("bad_alg", "alg must be"),
        ("bad_base64", "base64"),
        ("short_iv", "12 bytes"),
        ("not_an_object", "not a JSON object"),
    ],
)
def test_a_wrong_envelope_is_refused_without_revealing_anything(key, case, message):
    envelope = protocol.envelope_encrypt(key.public_key(), SECRET, aad=_aad(), kid=THUMBPRINT)
    private, aad = key, _aad()
    if case == "other_machine":
        aad = _aad(vm_id="another-vm")
    elif case == "other_name":
        aad = _aad(name="Other")
    elif case == "other_sequence":
        aad = _aad(sequence=4)
    elif case == "other_kind":
        aad = _aad(kind="runCommands")
    elif case == "tampered":
        raw = bytearray(base64.b64decode(envelope["ciphertext"]))
        raw[0] ^= 1
        envelope["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    elif case == "other_key":
        private = identity.new_key()
    elif case == "other_kid":
        envelope["kid"] = "ff" * 20
    elif case == "bad_alg":
        envelope["alg"] = "dir"
    elif case == "bad_base64":
        envelope["iv"] = "***"
    elif case == "short_iv":
        envelope["iv"] = base64.b64encode(b"123").decode()
    elif case == "not_an_object":
        envelope = ["x"]
    with pytest.raises(protocol.ProtocolError, match=message) as caught:
        protocol.envelope_decrypt(private, envelope, aad=aad, kid=THUMBPRINT)
    assert "hush-hush" not in str(caught.value)


def test_envelope_kinds_are_checked():
    with pytest.raises(protocol.ProtocolError):
        protocol.envelope_aad(VM_ID, "machines", "x", 1)


# --- reports ----------------------------------------------------------------------------------------------------


def test_tail_text_keeps_the_last_4_kib_and_replaces_what_is_not_utf8():
    data = b"A" * 10_000 + b"the end\n"
    assert protocol.tail_text(data) == ("A" * 4088 + "the end\n")
    assert protocol.tail_text(b"ok \xff\xfe bye\x00") == "ok \ufffd\ufffd bye\ufffd"
    # A cut through a 3-byte character does not leave half of it at the start.
    assert protocol.tail_text("€" * 2000) == "€" * 1365
    assert len(protocol.tail_text(b"\xff" * 10_000).encode()) <= 4096


@given(st.binary(max_size=20_000))
def test_tail_text_never_exceeds_the_limit_and_never_fails(data):
    text = protocol.tail_text(data)
    assert len(text.encode()) <= 4096 and "\x00" not in text


@given(st.text(max_size=1000).filter(lambda s: "\x00" not in s))
def test_tail_text_keeps_short_valid_text_as_is(text):
    if len(text.encode("utf-8", "surrogatepass")) <= 4096 and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert protocol.tail_text(text.encode()) == text


def test_an_extension_report_has_the_contract_shape():
    report = protocol.extension_report(
        sequence=3,
        operation="install",
        state="Succeeded",
        message="Enable succeeded",
        stdout=b"x" * 5000 + b"done",
        stderr=b"\xff",
        exit_code=0,
        start=0,
        end=1.5,
        handler_version="2.1",
        now=2,
    )
    assert report["status"] == {
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
        "message": "Enable succeeded",
        "time": "1970-01-01T00:00:02.000Z",
    }
    stdout, stderr = report["substatuses"]
    assert stdout["code"] == "ComponentStatus/StdOut/succeeded" and stdout["message"].endswith("done")
    assert len(stdout["message"]) == 4096 and stderr["code"] == "ComponentStatus/StdErr/succeeded"
    assert stderr["message"] == "\ufffd"
    assert (report["startTime"], report["endTime"]) == ("1970-01-01T00:00:00.000Z", "1970-01-01T00:00:01.500Z")
    assert report["sequence"] == 3 and report["exitCode"] == 0 and report["handlerVersion"] == "2.1"
    failed = protocol.extension_report(sequence=1, operation="delete", state="Failed", message="no", now=0)
    assert failed["status"]["level"] == "Error" and failed["substatuses"][0]["code"].endswith("/failed")
    moving = protocol.extension_report(sequence=1, operation="update", state="Transitioning", message="", now=0)
    assert moving["endTime"] is None
    with pytest.raises(protocol.ProtocolError):
        protocol.extension_report(sequence=1, operation="install", state="Done", message="")


def test_a_run_command_report_has_the_contract_shape():
    running = protocol.run_command_report(sequence=1, state="Running", start=0, now=0)
    assert running["endTime"] is None and running["exitCode"] is None and running["executionState"] == "Running"
    done = protocol.run_command_report(
        sequence=1, state="TimedOut", stdout=b"o", stderr=b"e", exit_code=None, message="killed", start=0, now=9
    )
    assert (done["output"], done["error"], done["executionMessage"]) == ("o", "e", "killed")
    assert done["endTime"] == "1970-01-01T00:00:09.000Z"
    with pytest.raises(protocol.ProtocolError):
        protocol.run_command_report(sequence=1, state="Exploded")


# --- goal state -------------------------------------------------------------------------------------------------

GOAL_STATE = {
    "etag": "e1",
    "nextPollSeconds": 30,
    "extensions": [
        {
            "name": "CustomScript",
            "publisher": "Microsoft.Azure.Extensions",
            "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "autoUpgradeMinorVersion": True,
            "enableAutomaticUpgrade": False,
            "sequence": 3,
            "operation": "install",
            "forceUpdateTag": None,
            "settings": {"commandToExecute": "echo hi"},
            "protectedSettings": None,
        }
    ],
    "runCommands": [
        {
            "name": "rc1",
            "sequence": 1,
            "operation": "run",
            "source": {"script": "echo $A", "scriptUri": None, "commandId": None},
            "parameters": [{"name": "A", "value": "1"}],
            "protectedParameters": None,
            "timeoutInSeconds": 60,
            "runAsUser": None,
        }
    ],
}


def test_the_contract_example_goal_state_parses():
    state = parse_goal_state(GOAL_STATE)
    assert state.etag == "e1" and state.next_poll_seconds == 30
    (extension,) = state.extensions
    assert extension.key == "Microsoft.Azure.Extensions/CustomScript" and extension.sequence == 3
    assert extension.settings == {"commandToExecute": "echo hi"} and extension.protected_settings is None
    (run,) = state.run_commands
    assert run.script == "echo $A" and run.parameters == [("A", "1")] and run.timeout_seconds == 60


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(extensions={}),
        lambda d: d.update(nextPollSeconds=0),
        lambda d: d["extensions"][0].update(operation="enable"),
        lambda d: d["extensions"][0].update(sequence="3"),
        lambda d: d["extensions"][0].update(sequence=True),
        lambda d: d["extensions"][0].update(name=""),
        lambda d: d["extensions"][0].update(settings=[]),
        lambda d: d["extensions"][0].update(protectedSettings="secret"),
        lambda d: d["runCommands"][0].update(operation="install"),
        lambda d: d["runCommands"][0].update(parameters=[{"value": "x"}]),
        lambda d: d["runCommands"][0].update(timeoutInSeconds=-1),
        lambda d: d["runCommands"][0].update(source="echo"),
    ],
)
def test_a_malformed_goal_state_is_refused(mutate):
    data = copy.deepcopy(GOAL_STATE)
    mutate(data)
    with pytest.raises(protocol.ProtocolError):
        parse_goal_state(data)
    with pytest.raises(protocol.ProtocolError):
        parse_goal_state([])


def test_a_report_of_control_characters_still_fits_the_portal_limit():
    noise = bytes(range(1, 32)) * 200  # json escapes each as \\u00XX: six bytes
    report = protocol.extension_report(
        sequence=1, operation="install", state="Succeeded", message=noise, stdout=noise, stderr=noise, now=0
    )
    assert len(json.dumps(report).encode()) > 64 * 1024
    raw = protocol.encode_report(report)
    assert len(raw) <= 64 * 1024
    decoded = json.loads(raw)
    assert decoded["state"] == "Succeeded" and decoded["substatuses"][0]["message"]
    assert noise.decode().endswith(decoded["substatuses"][0]["message"])  # the end of the output is kept
    plain = protocol.run_command_report(sequence=1, state="Succeeded", stdout="é" * 100, now=0)
    assert json.loads(protocol.encode_report(plain)) == plain and "é".encode() in protocol.encode_report(plain)
