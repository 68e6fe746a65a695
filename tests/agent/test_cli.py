"""The agent's local commands (config, logs, version, show, check) and its proxy setting."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import zipfile

import pytest

from tests.agent.conftest import connect_args


def _run(home, *args, **env):
    full_env = {"PATH": "/usr/bin:/bin", "AZCMAGENT_HOME": str(home), "AZCMAGENT_INSTALL_CONFIG": str(home / "none")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "azcmagent.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        cwd=home,
        timeout=60,
    )


def test_version(tmp_path):
    result = _run(tmp_path, "version")
    assert result.returncode == 0 and result.stdout.strip() == "azcmagent version 1.50.0"


def test_config_set_get_list_clear_in_localconfig_json(tmp_path):
    assert _run(tmp_path, "config", "set", "proxy.url", "http://proxy.contoso.corp:8080").stdout.strip() == (
        "Config property proxy.url set to value http://proxy.contoso.corp:8080"
    )
    assert _run(tmp_path, "config", "set", "proxy.bypass", "ARM,Arc").returncode == 0
    allow = "Microsoft.Compute/CustomScriptExtension"
    assert _run(tmp_path, "config", "set", "extensions.allowlist", allow).returncode == 0
    monitor = "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"
    added = _run(tmp_path, "config", "set", "extensions.allowlist", monitor, "--add")
    assert added.returncode == 0
    assert _run(tmp_path, "config", "set", "extensions.enabled", "false").returncode == 0
    stored = json.loads((tmp_path / "localconfig.json").read_text())
    assert stored == {
        "proxy.url": "http://proxy.contoso.corp:8080",
        "proxy.bypass": ["ARM", "Arc"],
        "extensions.allowlist": [allow, monitor],
        "extensions.enabled": False,
    }
    assert _run(tmp_path, "config", "get", "proxy.bypass").stdout.strip() == "proxy.bypass : [ARM, Arc]"
    listing = _run(tmp_path, "config", "list").stdout
    assert listing.startswith("Local Configuration Settings")
    assert "proxy.url" in listing and "config.mode" in listing and ": full" in listing
    assert _run(tmp_path, "config", "clear", "proxy.url").returncode == 0
    assert "proxy.url" not in json.loads((tmp_path / "localconfig.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "proxy.url", "proxy:8080"), "http://"),
        (("set", "proxy.bypass", "Everything"), "proxy.bypass accepts"),
        (("set", "extensions.blocklist", "NoSlash"), "Publisher/Type"),
        (("set", "config.mode", "partial"), "full, monitor"),
        (("set", "no.such.key", "x"), "Unknown configuration property"),
        (("get", "no.such.key"), "Unknown configuration property"),
    ],
)
def test_config_rejects_bad_values_with_exit_23(tmp_path, args, message):
    result = _run(tmp_path, "config", *args)
    assert result.returncode == 23 and message in result.stdout + result.stderr
    assert not (tmp_path / "localconfig.json").exists()


def test_monitor_mode_locks_the_extension_lists(tmp_path):
    assert _run(tmp_path, "config", "set", "config.mode", "monitor").returncode == 0
    locked = _run(tmp_path, "config", "set", "extensions.enabled", "true")
    assert locked.returncode == 69 and "locked" in locked.stderr


def test_logs_collects_a_zip_without_the_private_key(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "himds.log").write_text("hello\n")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "machine.key").write_text("SECRET")
    out = tmp_path / "bundle.zip"
    result = _run(tmp_path, "logs", "-o", str(out))
    assert result.returncode == 0 and str(out) in result.stdout
    names = zipfile.ZipFile(out).namelist()
    assert "log/himds.log" in names and "show.txt" in names
    assert not any("machine.key" in name for name in names)


def test_show_of_an_unconnected_agent_is_disconnected_with_blank_resource_fields(tmp_path):
    shown = json.loads(_run(tmp_path, "show", "-j").stdout)
    assert shown["status"] == "Disconnected" and shown["resourceName"] == "" and shown["vmId"] == ""
    one = _run(tmp_path, "show", "Agent Status", "agentVersion").stdout.splitlines()
    assert len(one) == 2 and one[0].startswith("Agent Version") and one[1].startswith("Agent Status")


def test_disconnect_when_not_connected_fails_clearly(tmp_path):
    result = _run(tmp_path, "disconnect", "--force-local-only")
    assert result.returncode == 63 and "not connected" in result.stderr


@pytest.mark.integration
def test_check_reaches_the_portal(tls_live_server, tmp_path):
    result = _run(tmp_path, "check", "--portal-url", tls_live_server.url, "--ca-file", tls_live_server.ca_file, "-j")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(row["reachable"] for row in json.loads(result.stdout))
    unreachable = _run(tmp_path, "check", "--portal-url", "https://127.0.0.1:9", "--ca-file", tls_live_server.ca_file)
    assert unreachable.returncode == 26


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that records the targets it tunnels to."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        target = head.split(b" ")[1].decode()
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.server.close()


@pytest.mark.integration
def test_connect_and_heartbeats_go_through_proxy_url(
    tls_live_server, make_agent, make_service_principal, subscription, tenant, resource_group
):
    proxy = ConnectProxy()
    try:
        sp, secret = make_service_principal()
        agent = make_agent(AZCMAGENT_NO_SERVICE="1")
        assert agent.run("config", "set", "proxy.url", f"http://127.0.0.1:{proxy.port}").returncode == 0
        sp_args = ["--service-principal-id", str(sp.client_id), "--service-principal-secret", secret]
        result = agent.run(*connect_args(subscription, tenant, extra=sp_args))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "First heartbeat sent" in result.stdout
        # Token, ARM PUT, certificate and the first heartbeat: every request went through the proxy.
        assert len(proxy.targets) >= 4
        assert set(proxy.targets) == {f"127.0.0.1:{tls_live_server.port}"}
    finally:
        proxy.close()


def test_config_file_supplies_flags_and_the_command_line_wins(tmp_path):
    (tmp_path / "connect.json").write_text(
        json.dumps({"resource-group": "rg", "location": "atlantis", "subscription-id": "s", "tenant-id": "t"})
    )
    from_file = _run(tmp_path, "connect", "--config", str(tmp_path / "connect.json"), "--portal-url", "https://x")
    assert from_file.returncode == 20 and "atlantis" in from_file.stderr  # the file's region was used
    overridden = _run(
        tmp_path,
        "connect",
        "--config",
        str(tmp_path / "connect.json"),
        "--location",
        "mars",
        "--portal-url",
        "https://x",
    )
    assert overridden.returncode == 20 and "mars" in overridden.stderr
    missing = _run(tmp_path, "connect", "--config", str(tmp_path / "nope.json"))
    assert missing.returncode == 23


def test_cli_lines_are_kept_in_azcmagent_log(tmp_path):
    _run(tmp_path, "connect", "--resource-group", "rg")
    assert "AZCM0023" in (tmp_path / "log" / "azcmagent.log").read_text()
