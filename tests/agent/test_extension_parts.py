"""The extension manager's parts, each on its own: the process runner, downloads, the local policy, the CustomScript
handler's settings, choosing the next operation, restart recovery, and the new local settings."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from azcmagent import config, identity, policy, protocol
from azcmagent.download import Downloader, DownloadError, file_name
from azcmagent.extensions import ExtensionManager, safe_component
from azcmagent.goalstate import parse_goal_state
from azcmagent.handlers import HANDLERS, HandlerContext, handler_class
from azcmagent.handlers.customscript import CustomScriptHandler, decode_script
from azcmagent.process import FILE_LIMIT, run_process


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _run(tmp_path, script: str, *, timeout: float = 30, stop=None):
    return run_process(
        ["/bin/sh", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=timeout,
        stdout_path=tmp_path / "out",
        stderr_path=tmp_path / "err",
        stop=stop,
    )


# --- the process runner ----------------------------------------------------------------------------------------


def test_a_process_reports_its_exit_code_and_output(tmp_path):
    result = _run(tmp_path, "echo hello; printf 'bad \\377 byte' >&2; exit 3")
    assert result.exit_code == 3 and not result.timed_out and not result.stopped
    assert result.stdout == b"hello\n" and result.stderr == b"bad \xff byte"
    assert (tmp_path / "out").read_bytes() == b"hello\n"


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    result = _run(tmp_path, "sleep 300 & echo $! > bg.pid; sleep 300", timeout=1)
    assert result.timed_out and result.exit_code is None
    background = int((tmp_path / "bg.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(background), "the script's background child survived the timeout"


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    result = _run(tmp_path, "trap '' TERM; echo $$ > me.pid; while true; do sleep 1; done", timeout=1)
    assert result.timed_out
    assert not alive(int((tmp_path / "me.pid").read_text()))


def test_stopping_the_agent_ends_the_process(tmp_path):
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    result = _run(tmp_path, "sleep 300", stop=stop)
    assert result.stopped and result.exit_code is None and not result.timed_out


def test_a_flood_keeps_the_last_bytes_and_caps_the_file(tmp_path):
    result = _run(tmp_path, "head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END")
    assert result.exit_code == 0
    assert len(result.stdout) == 4096 and result.stdout.endswith(b"x\nTHE-END\n")
    assert (tmp_path / "out").stat().st_size == FILE_LIMIT


def test_a_child_left_running_does_not_hold_the_result(tmp_path):
    result = _run(tmp_path, "sleep 300 & echo $! > bg.pid; echo done")
    assert result.exit_code == 0 and result.stdout == b"done\n"
    os.kill(int((tmp_path / "bg.pid").read_text()), 9)


# --- downloads -------------------------------------------------------------------------------------------------


def test_file_names_come_from_the_uri_path_only():
    assert file_name("https://h.test/a/b/install.sh?sv=2020&sig=SECRET") == "install.sh"
    for bad in ("https://h.test/", "https://h.test/a/..", "https://h.test/%2E%2E", "https://h.test/a%2Fb"):
        with pytest.raises(DownloadError) as caught:
            file_name(bad)
        assert "SECRET" not in str(caught.value)


def test_downloads_trust_the_portal_ca_for_the_portal_only(fake_portal, tmp_path):
    fake_portal.files["tool.sh"] = b"echo tool\n"
    downloader = Downloader(portal_url=fake_portal.url, ca_file=str(fake_portal.ca_file), proxy=None)
    saved = downloader.fetch(f"{fake_portal.url}/files/tool.sh?sig=abc", tmp_path)
    assert saved == tmp_path / "tool.sh" and saved.read_bytes() == b"echo tool\n"
    # The same server under another name is not the portal: the system trust store does not know its CA.
    with pytest.raises(DownloadError, match="could not download https://localhost"):
        downloader.fetch(f"https://localhost:{fake_portal.port}/files/tool.sh", tmp_path)
    without_ca = Downloader(portal_url=fake_portal.url, ca_file=None, proxy=None)
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        without_ca.fetch(f"{fake_portal.url}/files/tool.sh", tmp_path)


def test_plain_http_is_refused_even_through_a_redirect(fake_portal, tmp_path):
    downloader = Downloader(portal_url=fake_portal.url, ca_file=str(fake_portal.ca_file), proxy=None)
    with pytest.raises(DownloadError, match="only https:// URIs"):
        downloader.fetch("http://127.0.0.1:9/files/tool.sh", tmp_path)
    fake_portal.files["real.sh"] = b"ok"
    fake_portal.redirects["to-http"] = f"http://127.0.0.1:{fake_portal.port}/files/real.sh"
    fake_portal.redirects["to-https"] = "/files/real.sh"
    with pytest.raises(DownloadError, match="only https:// URIs"):
        downloader.fetch(f"{fake_portal.url}/redirect/to-http", tmp_path, name="x.sh")
    assert downloader.fetch(f"{fake_portal.url}/redirect/to-https", tmp_path, name="y.sh").read_bytes() == b"ok"


def test_a_failed_download_names_the_uri_without_its_query(fake_portal, tmp_path):
    downloader = Downloader(portal_url=fake_portal.url, ca_file=str(fake_portal.ca_file), proxy=None)
    target = tmp_path / "download"
    target.mkdir()
    with pytest.raises(DownloadError) as caught:
        downloader.fetch(f"{fake_portal.url}/files/missing.sh?sig=SECRET-SAS", target)
    assert "HTTP 404" in str(caught.value) and "SECRET-SAS" not in str(caught.value)
    assert not list(target.iterdir())  # no partial file left


# --- the local policy ------------------------------------------------------------------------------------------

CSE = {"publisher": "Microsoft.Azure.Extensions", "type_": "CustomScript"}


def test_the_policy_follows_enabled_blocklist_and_allowlist():
    local = dict(config.LOCAL_DEFAULTS)
    assert policy.extension_refusal(local, **CSE, operation="install") is None
    disabled = {**local, "extensions.enabled": False}
    for operation in ("install", "update", "delete"):
        assert policy.extension_refusal(disabled, **CSE, operation=operation) == policy.DISABLED
    assert policy.run_command_refusal(disabled) and policy.run_command_refusal(local) is None
    blocked = {**local, "extensions.blocklist": ["microsoft.azure.extensions/customscript"]}
    assert "extensions.blocklist" in policy.extension_refusal(blocked, **CSE, operation="install")
    assert policy.extension_refusal(blocked, **CSE, operation="delete") is None  # removing is allowed
    allowed = {**local, "extensions.allowlist": ["Contoso/Agent"]}
    assert "extensions.allowlist" in policy.extension_refusal(allowed, **CSE, operation="update")
    both = {**local, "extensions.allowlist": ["Microsoft.Azure.Extensions/CustomScript"]}
    assert policy.extension_refusal(both, **CSE, operation="install") is None
    both["extensions.blocklist"] = ["Microsoft.Azure.Extensions/CustomScript"]
    assert "blocklist" in policy.extension_refusal(both, **CSE, operation="install")  # the blocklist wins
    assert policy.run_command_refusal(both) is None  # run commands are not extensions


# --- the CustomScript handler ----------------------------------------------------------------------------------


def test_the_registry_knows_the_linux_and_windows_script_types():
    assert handler_class("microsoft.azure.extensions", "customscript") is CustomScriptHandler
    assert handler_class("Microsoft.Compute", "CustomScriptExtension").__name__ == "WindowsOnlyHandler"
    assert handler_class("Contoso", "Agent") is None and len(HANDLERS) == 2


def test_script_is_base64_optionally_gzipped():
    assert decode_script(base64.b64encode(b"echo 1").decode()) == b"echo 1"
    assert decode_script(base64.b64encode(gzip.compress(b"echo 2")).decode()) == b"echo 2"
    for bad in ("not base64!", base64.b64encode(b"\x1f\x8bnot gzip").decode()):
        with pytest.raises(ValueError):
            decode_script(bad)


@pytest.fixture
def handler(fake_portal):
    downloader = Downloader(portal_url=fake_portal.url, ca_file=str(fake_portal.ca_file), proxy=None)
    return CustomScriptHandler(HandlerContext(downloader, threading.Event(), {"PATH": "/usr/bin:/bin"}))


@pytest.mark.parametrize(
    ("settings", "protected", "message"),
    [
        ({}, {}, "exactly one of commandToExecute and script"),
        ({"commandToExecute": "a", "script": "YQ=="}, {}, "exactly one"),
        ({"commandToExecute": "a"}, {"commandToExecute": "b"}, "not in both"),
        ({"commandToExecute": "a", "color": "red"}, {}, "unknown setting(s) color"),
        ({"commandToExecute": "a"}, {"skipDos2Unix": True}, "unknown setting(s) skipDos2Unix"),
        ({"commandToExecute": "a", "fileUris": "https://x"}, {}, "fileUris must be a list"),
        ({"commandToExecute": "  "}, {}, "non-empty string"),
        ({"commandToExecute": "a", "skipDos2Unix": "yes"}, {}, "true or false"),
        ({"commandToExecute": "a", "timestamp": "now"}, {}, "whole number"),
    ],
)
def test_bad_settings_fail_with_the_reason(handler, tmp_path, settings, protected, message):
    result = handler.enable(settings, protected, tmp_path / "work", 10)
    assert not result.ok and message in result.message


def test_the_command_is_never_on_disk_nor_on_the_command_line(handler, tmp_path):
    secret = "hush-7f3a9c"
    command = f"cat /proc/$$/cmdline | tr '\\0' ' '; : {secret}"
    result = handler.enable({}, {"commandToExecute": command}, tmp_path / "work", 10)
    assert result.ok, result.message
    assert result.stdout.startswith(b"/bin/sh /dev/fd/") and secret.encode() not in result.stdout
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes()


def test_scripts_and_downloads_get_dos2unix_unless_skipped(handler, fake_portal, tmp_path):
    fake_portal.files["data.txt"] = b"one\r\ntwo\r\n"
    script = base64.b64encode(b"echo $((6*7))\r\n").decode()
    settings = {"script": script, "fileUris": [f"{fake_portal.url}/files/data.txt"]}
    converted = handler.enable(settings, {}, tmp_path / "a", 10)
    assert converted.ok and converted.stdout == b"42\n"
    assert (tmp_path / "a" / "data.txt").read_bytes() == b"one\ntwo\n"
    kept = handler.enable({**settings, "skipDos2Unix": True}, {}, tmp_path / "b", 10)
    assert kept.ok and kept.stdout == b"42\r\n"
    assert (tmp_path / "b" / "data.txt").read_bytes() == b"one\r\ntwo\r\n"


def test_uninstall_removes_the_handler_directory(handler, tmp_path):
    handler_dir = tmp_path / "Microsoft.Azure.Extensions.CustomScript"
    assert handler.enable({"commandToExecute": "touch made"}, {}, handler_dir / "2.1" / "download" / "1", 10).ok
    assert (handler_dir / "2.1" / "download" / "1" / "made").exists()
    assert handler.uninstall(handler_dir).ok and not handler_dir.exists()
    assert handler.uninstall(handler_dir).ok


# --- choosing and recovering -----------------------------------------------------------------------------------


def _manager(tmp_path, sent, key=None):
    paths = config.Paths(tmp_path)
    return ExtensionManager(
        paths=paths,
        vm_id="vm-1",
        key=key or identity.new_key(),
        thumbprint="AB" * 20,
        send=lambda kind, name, body: sent.append((kind, name, body)) or "ok",
        downloader=Downloader(portal_url="https://portal.test", ca_file=None, proxy=None),
        stop=threading.Event(),
        env={"PATH": "/usr/bin:/bin"},
        local_config=lambda: dict(config.LOCAL_DEFAULTS),
    )


def _extension(name, sequence, operation="install"):
    return {"name": name, "publisher": "P", "type": "T", "sequence": sequence, "operation": operation}


def _run_command(name, sequence):
    return {"name": name, "sequence": sequence, "operation": "run", "source": {"script": "true"}}


def test_operations_go_in_sequence_order_and_never_twice(tmp_path):
    sent = []
    manager = _manager(tmp_path, sent)
    goal = parse_goal_state(
        {
            "etag": "1",
            "extensions": [_extension("b", 2), _extension("a", 2), _extension("c", 1)],
            "runCommands": [_run_command("a", 2), _run_command("z", 1)],
        }
    )
    order = []
    while (operation := manager.next_operation(goal)) is not None:
        order.append((operation.name, operation.sequence, type(operation).__name__))
        manager.apply(operation)
    assert order == [
        ("c", 1, "ExtensionOperation"),
        ("z", 1, "RunCommandOperation"),
        ("a", 2, "ExtensionOperation"),
        ("b", 2, "ExtensionOperation"),
        ("a", 2, "RunCommandOperation"),
    ]
    terminal = [(k, n, b.get("state") or b.get("executionState")) for k, n, b in sent if b.get("endTime")]
    assert terminal == [
        ("extensions", "c", "Failed"),  # P/T has no handler
        ("runCommands", "z", "Succeeded"),
        ("extensions", "a", "Failed"),
        ("extensions", "b", "Failed"),
        ("runCommands", "a", "Succeeded"),
    ]
    assert sent[0][2]["status"]["message"] == "no handler for P.T on this agent"
    # A new manager on the same state file (the service restarted) has nothing to do.
    assert _manager(tmp_path, []).next_operation(goal) is None
    stored = json.loads((tmp_path / "extensions" / "state.json").read_text())
    assert stored["outbox"] == [] and stored["inFlight"] is None and stored["extensions"]["a"]["sequence"] == 2
    assert oct((tmp_path / "extensions" / "state.json").stat().st_mode & 0o777) == "0o600"


def test_an_operation_interrupted_by_a_restart_is_reported_once(tmp_path):
    script = tmp_path / "long.sh"
    script.write_text("sleep 300\n")
    child = subprocess.Popen(["/bin/sh", str(script)], start_new_session=True)
    first = _manager(tmp_path, [])
    first.state.begin("runCommands", "rc", 4, "run")
    first._record_pid(child.pid)
    sent = []
    second = _manager(tmp_path, sent)
    second.recover()
    assert child.wait(timeout=5) == -9  # the orphaned script was ended before the report
    ((kind, name, body),) = sent
    assert (kind, name, body["sequence"], body["executionState"]) == ("runCommands", "rc", 4, "Unknown")
    assert body["executionMessage"] == "The agent restarted while the script was running"
    assert second.state.applied("runCommands", "rc") == 4 and second.state.in_flight is None
    second.recover()
    assert len(sent) == 1


def test_an_interrupted_extension_is_reported_failed(tmp_path):
    _manager(tmp_path, []).state.begin("extensions", "CustomScript", 2, "update", publisher="P", type="T", version="1")
    sent = []
    manager = _manager(tmp_path, sent)
    manager.recover()
    entry = manager.state.entry("extensions", "CustomScript")
    assert (entry["state"], entry["publisher"], entry["type"], entry["sequence"]) == ("Failed", "P", "T", 2)
    ((_, _, body),) = sent
    assert (body["state"], body["operation"], body["sequence"]) == ("Failed", "update", 2)
    assert body["status"]["message"] == "The agent restarted while the extension operation was running"


def test_an_envelope_for_another_operation_fails_the_operation(tmp_path):
    sent = []
    key = identity.new_key()
    manager = _manager(tmp_path, sent, key)
    aad = protocol.envelope_aad("vm-1", "extensions", "cse", 7)  # but the operation is sequence 8
    envelope = protocol.envelope_encrypt(key.public_key(), {"commandToExecute": "true"}, aad=aad, kid="AB" * 20)
    item = {**_extension("cse", 8), "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript"}
    goal = parse_goal_state({"etag": "1", "extensions": [{**item, "protectedSettings": envelope}]})
    manager.apply(manager.next_operation(goal))
    assert sent[-1][2]["state"] == "Failed"
    assert sent[-1][2]["status"]["message"].startswith("protectedSettings could not be decrypted: the envelope does")


def test_names_are_safe_as_directories():
    assert safe_component("CustomScript") == "CustomScript"
    assert safe_component("../etc").startswith("x-") and "/" not in safe_component("a/b")
    assert safe_component("a/b") == safe_component("a/b") != safe_component("a/c")


# --- settings --------------------------------------------------------------------------------------------------


def _config(tmp_path, *args):
    env = {"PATH": "/usr/bin:/bin", "AZCMAGENT_HOME": str(tmp_path), "AZCMAGENT_INSTALL_CONFIG": str(tmp_path / "x")}
    return subprocess.run(
        [sys.executable, "-m", "azcmagent.cli", "config", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_new_settings_are_validated(tmp_path):
    assert _config(tmp_path, "get", "himds.port").stdout.strip() == "himds.port : 40342"
    assert _config(tmp_path, "get", "himds.tokensDir").stdout.strip() == "himds.tokensDir : /var/opt/azcmagent/tokens"
    assert _config(tmp_path, "set", "himds.port", "41000").returncode == 0
    assert _config(tmp_path, "set", "extensions.timeoutSeconds", "60").returncode == 0
    assert _config(tmp_path, "set", "himds.tokensDir", "/tmp/tokens").returncode == 0
    for key, value in (("himds.port", "70000"), ("extensions.timeoutSeconds", "0"), ("himds.tokensDir", "rel/x")):
        refused = _config(tmp_path, "set", key, value)
        assert refused.returncode == 23, refused.stdout
    stored = json.loads((tmp_path / "localconfig.json").read_text())
    assert stored == {"himds.port": 41000, "extensions.timeoutSeconds": 60, "himds.tokensDir": "/tmp/tokens"}


def test_a_new_identity_starts_with_a_fresh_state(tmp_path):
    sent = []
    manager = _manager(tmp_path, sent)
    goal = parse_goal_state({"etag": "1", "runCommands": [_run_command("rc", 1)]})
    manager.apply(manager.next_operation(goal))
    assert manager.next_operation(goal) is None
    assert oct((tmp_path / "runcommands").stat().st_mode & 0o777) == "0o700"
    reconnected = ExtensionManager(**{**manager_options(tmp_path), "vm_id": "vm-2"})
    assert reconnected.next_operation(goal) is not None  # sequence 1 of the new machine was never applied
    assert json.loads((tmp_path / "extensions" / "state.json").read_text())["vmId"] == "vm-2"


def manager_options(tmp_path):
    return {
        "paths": config.Paths(tmp_path),
        "vm_id": "vm-1",
        "key": identity.new_key(),
        "thumbprint": "AB" * 20,
        "send": lambda kind, name, body: "ok",
        "downloader": Downloader(portal_url="https://portal.test", ca_file=None, proxy=None),
        "stop": threading.Event(),
        "env": {},
        "local_config": lambda: dict(config.LOCAL_DEFAULTS),
    }
