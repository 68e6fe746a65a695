"""The agent service applying goal states for real: a ``python -m azcmagent.cli service run`` process against the
fake portal (tests/agent/fake_portal.py), CustomScript extensions end to end, the local policy, timeouts, output
floods, secrets, restarts, stale reports and undelivered ones."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.agent.test_cli import ConnectProxy
from tests.agent.test_extension_parts import alive

CSE = {"publisher": "Microsoft.Azure.Extensions", "type_": "CustomScript"}
NAME = "CustomScript"


def _ext_report(portal, host, sequence, name=NAME, **kw):
    return portal.wait_for_report(host.vm_id, "extensions", name, sequence=sequence, **kw)


def _stdout(report) -> str:
    return report["substatuses"][0]["message"]


def _state(host) -> dict:
    return json.loads((host.home / "extensions" / "state.json").read_text())


def test_custom_script_install_update_uninstall(make_host, fake_portal):
    host = make_host()
    host.start()
    settings = {"commandToExecute": "echo installed $(pwd); touch made-here"}
    assert fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=settings) == 1
    installed = _ext_report(fake_portal, host, 1)
    assert (installed["state"], installed["operation"], installed["exitCode"]) == ("Succeeded", "install", 0)
    assert installed["status"]["code"] == "ProvisioningState/succeeded" and installed["handlerVersion"] == "2.1"
    workdir = host.home / "extensions" / "Microsoft.Azure.Extensions.CustomScript" / "2.1" / "download" / "1"
    assert _stdout(installed) == f"installed {workdir}\n" and (workdir / "made-here").exists()
    assert installed["status"]["message"].startswith("Enable succeeded: \n[stdout]\ninstalled ")
    progress = fake_portal.reports(host.vm_id, "extensions", NAME)[0]
    assert progress["state"] == "Transitioning" and progress["sequence"] == 1 and progress["endTime"] is None
    listed = json.loads(host.cli("extension", "list", "-j").stdout)
    assert [(e["name"], e["state"], e["publisher"], e["version"]) for e in listed] == [
        (NAME, "Succeeded", "Microsoft.Azure.Extensions", "2.1")
    ]
    shown = json.loads(host.cli("show", "-j").stdout)
    assert shown["extensionServiceStatus"] == "running"

    assert fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=settings, force_update_tag="again") == 2
    updated = _ext_report(fake_portal, host, 2)
    assert (updated["state"], updated["operation"]) == ("Succeeded", "update")
    assert (workdir.parent / "2" / "made-here").exists()  # it ran again, in the new sequence's directory

    assert fake_portal.delete_extension(host.vm_id, NAME) == 3
    deleted = _ext_report(fake_portal, host, 3)
    assert (deleted["state"], deleted["operation"]) == ("Deleted", "delete")
    assert not (host.home / "extensions" / "Microsoft.Azure.Extensions.CustomScript").exists()
    assert json.loads(host.cli("extension", "list", "-j").stdout) == []
    assert fake_portal.rejections == [] and len(fake_portal.heartbeats) >= 2
    fake_portal.wait_for(lambda: _state(host)["outbox"] == [], what="an empty outbox")
    assert _state(host)["inFlight"] is None


def test_file_uris_come_over_https_through_the_proxy(make_host, fake_portal):
    proxy = ConnectProxy()
    try:
        host = make_host()
        host.set_config(**{"proxy.url": f"http://127.0.0.1:{proxy.port}"})
        host.start()
        fake_portal.files["install.sh"] = b"echo from the script: $1\r\n"
        settings = {"fileUris": [f"{fake_portal.url}/files/install.sh"], "commandToExecute": "sh install.sh 7"}
        fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=settings)
        report = _ext_report(fake_portal, host, 1)
        assert report["state"] == "Succeeded" and _stdout(report) == "from the script: 7\n"
        assert set(proxy.targets) == {f"127.0.0.1:{fake_portal.port}"}
        assert len(proxy.targets) >= 4  # heartbeat, goal state, the download, the reports: all through the proxy

        plain = {"fileUris": [f"http://127.0.0.1:{fake_portal.port}/files/install.sh"], "commandToExecute": "true"}
        fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=plain)
        refused = _ext_report(fake_portal, host, 2)
        assert refused["state"] == "Failed" and "only https:// URIs are downloaded" in refused["status"]["message"]
    finally:
        proxy.close()


def test_protected_settings_never_reach_a_file_or_a_log(make_host, fake_portal):
    host = make_host()
    host.start()
    secret, sas = "hush-7f3a9c-command", "sig-SECRET-4b1d"
    fake_portal.files["tool.sh"] = b"echo tool ran\n"
    protected = {
        "commandToExecute": f"sh tool.sh; echo $((6*7)) # {secret}",
        "fileUris": [f"{fake_portal.url}/files/tool.sh?sv=2024&{sas}"],
    }
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings={"timestamp": 1}, protected=protected)
    report = _ext_report(fake_portal, host, 1)
    assert report["state"] == "Succeeded" and _stdout(report) == "tool ran\n42\n"
    host.stop()
    written = host.all_files_bytes()
    assert secret.encode() not in written and sas.encode() not in written
    assert b"Heartbeat sent" in written and b"Extension CustomScript" in written  # the logs were searched too


def test_the_local_policy_refuses_with_the_reason(make_host, fake_portal):
    host = make_host()
    host.start()
    command = {"commandToExecute": "echo ran"}
    assert host.cli("config", "set", "extensions.blocklist", "microsoft.azure.extensions/customscript").returncode == 0
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=command)
    blocked = _ext_report(fake_portal, host, 1)
    assert blocked["state"] == "Failed" and blocked["status"]["level"] == "Error"
    assert "blocked on this machine by its extensions.blocklist" in blocked["status"]["message"]
    assert not (host.home / "extensions" / "Microsoft.Azure.Extensions.CustomScript").exists()

    host.cli("config", "clear", "extensions.blocklist")
    host.cli("config", "set", "extensions.allowlist", "Contoso.Monitoring/Agent")
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=command)
    assert "not in this machine's extensions.allowlist" in _ext_report(fake_portal, host, 2)["status"]["message"]

    host.cli("config", "clear", "extensions.allowlist")
    host.cli("config", "set", "extensions.enabled", "false")
    assert json.loads(host.cli("show", "-j").stdout)["extensionServiceStatus"] == "disabled"
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=command)
    disabled = _ext_report(fake_portal, host, 3)
    assert disabled["status"]["message"] == (
        "Extensions are disabled on this machine (azcmagent config extensions.enabled=false)"
    )
    fake_portal.run_command(host.vm_id, "rc", script="echo ran")
    refused = fake_portal.wait_for_report(host.vm_id, "runCommands", "rc")
    assert refused["executionState"] == "Failed" and "extensions.enabled=false" in refused["executionMessage"]

    host.cli("config", "set", "extensions.enabled", "true")
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=command)
    allowed = _ext_report(fake_portal, host, 4)
    assert allowed["state"] == "Succeeded" and _stdout(allowed) == "ran\n"


def test_types_without_a_handler_fail_honestly(make_host, fake_portal):
    host = make_host()
    host.start()
    fake_portal.put_extension(host.vm_id, "mon", publisher="Contoso.Monitoring", type_="Agent", settings={})
    unknown = _ext_report(fake_portal, host, 1, name="mon")
    assert unknown["state"] == "Failed"
    assert unknown["status"]["message"] == "no handler for Contoso.Monitoring.Agent on this agent"
    windows = {"publisher": "Microsoft.Compute", "type_": "CustomScriptExtension", "version": "1.10"}
    fake_portal.put_extension(host.vm_id, "win", **windows, settings={"commandToExecute": "dir"})
    refused = _ext_report(fake_portal, host, 1, name="win")
    assert (
        refused["state"] == "Failed"
        and "Windows-only extension and this agent runs on Linux" in (refused["status"]["message"])
    )
    fake_portal.delete_extension(host.vm_id, "mon")
    assert _ext_report(fake_portal, host, 2, name="mon")["state"] == "Deleted"  # nothing to remove: not stuck


def test_a_timeout_kills_the_process_group_and_heartbeats_go_on(make_host, fake_portal):
    host = make_host()
    host.set_config(**{"extensions.timeoutSeconds": 4})
    host.start()
    command = {"commandToExecute": "sleep 300 & echo $! > bg.pid; sleep 300"}
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings=command)
    _ext_report(fake_portal, host, 1, terminal=False)
    beats_before = len(fake_portal.heartbeats)
    report = _ext_report(fake_portal, host, 1)
    assert report["state"] == "Failed" and report["exitCode"] is None
    assert "did not finish within 4 seconds and was killed" in report["status"]["message"]
    assert len(fake_portal.heartbeats) - beats_before >= 2, "heartbeats stopped while the handler ran"
    workdir = next((host.home / "extensions").rglob("bg.pid")).parent
    background = int((workdir / "bg.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(background)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_100_mb_flood_does_not_grow_the_agent(make_host, fake_portal):
    host = make_host()
    host.start()
    fake_portal.run_command(host.vm_id, "warm-up", script="echo warm")
    assert fake_portal.wait_for_report(host.vm_id, "runCommands", "warm-up")["executionState"] == "Succeeded"
    before = _peak_rss_kib(host.process.pid)
    flood = "head -c 100000000 /dev/zero | tr '\\0' 'x'; printf '\\n\\377\\376 end'; head -c 50000000 /dev/zero >&2"
    fake_portal.run_command(host.vm_id, "flood", script=flood, timeout=300)
    report = fake_portal.wait_for_report(host.vm_id, "runCommands", "flood", timeout=240)
    after = _peak_rss_kib(host.process.pid)
    print(f"agent peak RSS (VmHWM) before the flood {before} KiB, after 150 MB of output {after} KiB")
    assert report["executionState"] == "Succeeded"
    assert report["output"].endswith("xxx\n\ufffd\ufffd end") and len(report["output"].encode()) <= 4096
    assert set(report["error"]) == {"\ufffd"} and 4090 <= len(report["error"].encode()) <= 4096  # NULs replaced
    assert after - before < 16 * 1024, f"the agent grew by {after - before} KiB while the script printed 150 MB"
    run_dir = host.home / "runcommands" / "flood" / "1"
    assert (run_dir / "stdout").stat().st_size == 16 * 1024 * 1024  # the file is capped too


def test_run_commands_parameters_timeout_script_uri_and_delete(make_host, fake_portal):
    host = make_host()
    host.start()
    parameters = [{"name": "GREETING", "value": "hello"}, {"name": "TARGET", "value": "world"}]
    fake_portal.run_command(
        host.vm_id,
        "greet",
        script='echo "$GREETING $TARGET"; echo "token length ${#API_TOKEN}"; echo warn >&2; exit 0',
        parameters=parameters,
        protected=[{"name": "API_TOKEN", "value": "s3cr3t-value"}],
    )
    running = fake_portal.wait_for_report(host.vm_id, "runCommands", "greet", terminal=False)
    assert running["executionState"] == "Running" and running["endTime"] is None
    done = fake_portal.wait_for_report(host.vm_id, "runCommands", "greet")
    assert [r["executionState"] for r in fake_portal.reports(host.vm_id, "runCommands", "greet")] == [
        "Running",
        "Succeeded",
    ]
    assert (done["executionState"], done["exitCode"]) == ("Succeeded", 0)
    assert done["output"] == "hello world\ntoken length 12\n" and done["error"] == "warn\n"
    assert done["endTime"] and done["startTime"] <= done["endTime"]

    fake_portal.run_command(host.vm_id, "fails", script="exit 7")
    failed = fake_portal.wait_for_report(host.vm_id, "runCommands", "fails")
    assert (failed["executionState"], failed["exitCode"]) == ("Failed", 7)

    fake_portal.run_command(host.vm_id, "slow", script="sleep 300", timeout=2)
    timed_out = fake_portal.wait_for_report(host.vm_id, "runCommands", "slow")
    assert timed_out["executionState"] == "TimedOut" and timed_out["exitCode"] is None

    fake_portal.files["remote.sh"] = b'echo "remote says $WHO"\n'
    fake_portal.run_command(
        host.vm_id,
        "remote",
        script_uri=f"{fake_portal.url}/files/remote.sh",
        parameters=[{"name": "WHO", "value": "hi"}],
    )
    assert fake_portal.wait_for_report(host.vm_id, "runCommands", "remote")["output"] == "remote says hi\n"

    fake_portal.run_command(host.vm_id, "bad-name", script="true", parameters=[{"name": "NOT-VALID", "value": "1"}])
    bad = fake_portal.wait_for_report(host.vm_id, "runCommands", "bad-name")
    assert bad["executionState"] == "Failed" and "'NOT-VALID'" in bad["executionMessage"]

    assert (host.home / "runcommands" / "greet" / "1" / "script.sh").exists()
    fake_portal.delete_run_command(host.vm_id, "greet")
    deleted = fake_portal.wait_for_report(host.vm_id, "runCommands", "greet", sequence=2)
    assert deleted["executionState"] == "Canceled" and not (host.home / "runcommands" / "greet").exists()
    assert b"s3cr3t-value" not in host.all_files_bytes()
    assert fake_portal.rejections == []


def test_operations_run_in_sequence_order_once_even_across_restarts(make_host, fake_portal):
    host = make_host()
    trail = host.home / "trail.txt"
    for name in ("b", "a"):
        fake_portal.run_command(host.vm_id, name, script=f"echo {name} >> {trail}")
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings={"commandToExecute": f"echo ext >> {trail}"})
    fake_portal.run_command(host.vm_id, "a", script=f"echo a-again >> {trail}")  # "a" is now at sequence 2
    host.start()
    fake_portal.wait_for_report(host.vm_id, "runCommands", "a", sequence=2)
    assert trail.read_text().split() == ["ext", "b", "a-again"]
    host.stop()
    polls = sum(1 for method, path, _ in fake_portal.requests if path.endswith("/goalstate"))
    host.start()
    fake_portal.wait_for(
        lambda: sum(1 for m, p, _ in fake_portal.requests if p.endswith("/goalstate")) >= polls + 3, what="3 polls"
    )
    assert trail.read_text().split() == ["ext", "b", "a-again"]  # the restart ran nothing again
    statuses = [status for _, path, status in fake_portal.requests if path.endswith("/goalstate")]
    assert 304 in statuses  # unchanged goal states are cheap


def test_an_interrupted_run_is_reported_after_the_restart_and_not_run_again(make_host, fake_portal):
    host = make_host()
    host.start()
    marks = host.home / "marks.txt"
    fake_portal.run_command(host.vm_id, "long", script=f"echo started >> {marks}; sleep 300", timeout=600)
    fake_portal.wait_for_report(host.vm_id, "runCommands", "long", terminal=False)
    fake_portal.wait_for(lambda: (_state(host).get("inFlight") or {}).get("pid"), what="the recorded pid")
    script_pid = _state(host)["inFlight"]["pid"]
    host.stop(signal.SIGKILL)  # no chance to clean up: the script is orphaned
    assert alive(script_pid)
    host.start()
    report = fake_portal.wait_for_report(host.vm_id, "runCommands", "long")
    assert report["executionState"] == "Unknown"
    assert report["executionMessage"] == "The agent restarted while the script was running"
    deadline = time.monotonic() + 5
    while alive(script_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(script_pid), "the orphaned script was left running"
    assert marks.read_text() == "started\n"

    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings={"commandToExecute": "sleep 300"})
    _ext_report(fake_portal, host, 1, terminal=False)
    assert host.stop(signal.SIGTERM) == 0  # a clean stop ends the handler and leaves it in flight
    host.start()
    extension = _ext_report(fake_portal, host, 1)
    assert extension["state"] == "Failed"
    assert extension["status"]["message"] == "The agent restarted while the extension operation was running"


def test_a_stale_report_is_dropped_and_an_undelivered_one_is_retried(make_host, fake_portal):
    host = make_host()
    host.start()
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings={"commandToExecute": "sleep 2; echo first"})
    _ext_report(fake_portal, host, 1, terminal=False)
    fake_portal.put_extension(host.vm_id, NAME, **CSE, settings={"commandToExecute": "echo second"})  # sequence 2
    second = _ext_report(fake_portal, host, 2)
    assert second["state"] == "Succeeded" and _stdout(second) == "second\n"
    assert ("POST", f"/his/machines/{host.vm_id}/extensions/{NAME}/status", 409) in fake_portal.requests
    fake_portal.wait_for(lambda: _state(host)["outbox"] == [], what="an empty outbox")

    fake_portal.run_command(host.vm_id, "later", script="sleep 2; echo delivered late")
    fake_portal.wait_for_report(host.vm_id, "runCommands", "later", terminal=False)
    port = fake_portal.port
    fake_portal.stop()  # the portal goes away while the script runs
    fake_portal.wait_for(lambda: _state(host)["outbox"], timeout=30, what="the report waiting in the outbox")
    fake_portal.start(port)
    report = fake_portal.wait_for_report(host.vm_id, "runCommands", "later", timeout=60)
    assert report["output"] == "delivered late\n"
    fake_portal.wait_for(lambda: _state(host)["outbox"] == [], what="an empty outbox")
