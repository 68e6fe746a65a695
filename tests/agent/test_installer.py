"""The installers and the agent wheel served at /downloads/, and the at-scale script run through them for real."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sysconfig
import time
import uuid
import zipfile

import pytest
import tree_sitter
import tree_sitter_powershell

from machines.models import Machine
from tests.agent.conftest import OutputReader, stop_agent_service
from tests.agent_env import agent_environment

pytestmark = pytest.mark.django_db


def test_the_wheel_is_a_valid_pure_python_wheel_of_the_agent(client):
    response = client.get("/downloads/azcmagent-1.50.0-py3-none-any.whl")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"azcmagent/cli.py", "azcmagent/tags.py", "azcmagent/service.py"} <= names
    metadata = archive.read("azcmagent-1.50.0.dist-info/METADATA").decode()
    for dependency in ("cryptography", "PyJWT", "httpx"):
        assert f"Requires-Dist: {dependency}" in metadata
    assert "azcmagent = azcmagent.cli:main" in archive.read("azcmagent-1.50.0.dist-info/entry_points.txt").decode()
    record = archive.read("azcmagent-1.50.0.dist-info/RECORD").decode()
    assert all(f"{name}," in record for name in names)
    assert client.get("/downloads/azcmagent-9.9.9-py3-none-any.whl").status_code == 404


def test_the_wheel_follows_the_agent_sources(settings, tmp_path, monkeypatch):
    from onboarding import downloads as agent_downloads

    settings.VAR_DIR = tmp_path
    first = agent_downloads.wheel_path()
    assert agent_downloads.wheel_path() == first  # cached
    monkeypatch.setattr(agent_downloads, "_source_digest", lambda: "changed-sources")
    assert agent_downloads.wheel_path() != first and agent_downloads.wheel_path().exists()


def test_installers_are_served_without_a_session(client):
    linux = client.get("/downloads/install_linux_azcmagent.sh")
    assert linux.status_code == 200 and linux.content.startswith(b"#!/usr/bin/env bash")
    assert b"azcmagent-1.50.0-py3-none-any.whl" in linux.content
    syntax = subprocess.run(["bash", "-n"], input=linux.content, capture_output=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    windows = client.get("/downloads/install_windows_azcmagent.ps1")
    assert windows.status_code == 200
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(windows.content)
    assert not tree.root_node.has_error, "the PowerShell installer does not parse"
    assert b"-CaFile" in windows.content
    # The wheel is fetched trusting only the pinned CA, then installed from the local file (no index, no host settings).
    for installer in (linux.content, windows.content):
        assert b"ssl.create_default_context(cafile=ca_file)" in installer
        assert b"--isolated --disable-pip-version-check --quiet --no-index --no-deps" in installer
    assert (
        b'--cert "$prefix' not in linux.content and b'"--cert", $PinnedCa' not in windows.content
    )  # pip not near the portal


def test_the_installers_set_the_identity_endpoint_for_services_and_pass_shellcheck(client, tmp_path):
    """Managed identity: services find HIMDS through IDENTITY_ENDPOINT/IMDS_ENDPOINT, as Azure's installers set them
    (Linux: systemd's DefaultEnvironment; Windows: machine-level variables)."""
    linux = client.get("/downloads/install_linux_azcmagent.sh").content.decode()
    path = tmp_path / "install_linux_azcmagent.sh"
    path.write_text(linux)
    result = subprocess.run(["/usr/bin/shellcheck", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert (
        'DefaultEnvironment="IDENTITY_ENDPOINT=http://localhost:40342/metadata/identity/oauth2/token" '
        '"IMDS_ENDPOINT=http://localhost:40342"' in linux
    )
    assert '/lib/systemd/system.conf.d/azcmagent.conf"' in linux and "/var/opt/azcmagent/tokens" in linux
    windows = client.get("/downloads/install_windows_azcmagent.ps1").content.decode()
    assert "$IdentityEndpoint = 'http://localhost:40342/metadata/identity/oauth2/token'" in windows
    assert "$ImdsEndpoint = 'http://localhost:40342'" in windows
    assert '[Environment]::SetEnvironmentVariable("IDENTITY_ENDPOINT", $IdentityEndpoint, "Machine")' in windows
    assert '[Environment]::SetEnvironmentVariable("IMDS_ENDPOINT", $ImdsEndpoint, "Machine")' in windows


def test_the_linux_installer_refuses_http_and_a_missing_ca(client, tmp_path):
    script = tmp_path / "install.sh"
    script.write_bytes(client.get("/downloads/install_linux_azcmagent.sh").content)
    env = {"PATH": os.environ["PATH"], "AZCMAGENT_PREFIX": str(tmp_path / "prefix")}
    plain = subprocess.run(
        ["bash", str(script), "--portal-url", "http://portal", "--ca-file", str(script)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 1 and "must be https://" in plain.stderr
    no_ca = subprocess.run(
        ["bash", str(script), "--portal-url", "https://portal"], env=env, capture_output=True, text=True, check=False
    )
    assert no_ca.returncode == 1 and "--ca-file is required" in no_ca.stderr
    assert not (tmp_path / "prefix" / "venv").exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_at_scale_script_installs_the_agent_and_the_machine_is_connected_within_two_seconds(
    tls_live_server, db_lock, subscription, tenant, settings, tmp_path
):
    from identity.models import Role
    from identity.service_principals import service_principal_create
    from machines.services import resource_group_create
    from onboarding.scripts import ScriptOptions, render_onboarding_script

    resource_group_create(subscription=subscription, name="arc-fleet", location="westeurope")
    created = service_principal_create(display_name="fleet", role=Role.ONBOARDING, scope=subscription.arm_id)
    correlation_id = str(uuid.uuid4())
    tags = {"Datacenter": "CH01", "Owner": "Shared Infrastructure Services", "Note": "a=b, 'c'"}
    script = render_onboarding_script(
        ScriptOptions(
            os="linux",
            subscription_id=str(subscription.subscription_id),
            resource_group="arc-fleet",
            location="westeurope",
            tags=tags,
            service_principal_id=str(created.service_principal.client_id),
            service_principal_secret=created.secret,
        ),
        correlation_id=correlation_id,
        tenant_id=str(tenant.tenant_id),
        base_url=tls_live_server.url,
    )
    path = tmp_path / "OnboardingScript.sh"
    path.write_text(script)
    prefix, home = tmp_path / "prefix", tmp_path / "agent-home"
    env = agent_environment(
        TMPDIR=str(tmp_path),
        AZCMAGENT_PREFIX=str(prefix),
        AZCMAGENT_HOME=str(home),
        AZCMAGENT_VM_UUID=str(uuid.uuid4()).upper(),
        AZCMAGENT_SERVICE_MAX_SECONDS="30",
        # Offline: the agent's dependencies come from this interpreter's site-packages; nothing from an index.
        AZCMAGENT_SITE_PACKAGES=sysconfig.get_paths()["purelib"],
        PIP_NO_INDEX="1",
    )
    process = subprocess.Popen(
        ["bash", str(path)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    reader = OutputReader(process)
    try:
        reader.wait_for(r"Successfully Onboarded Resource to Azure", timeout=240)
        seen_at = time.monotonic()
        while True:
            with db_lock:
                machine = Machine.objects.filter(resource_group__name="arc-fleet").first()
            if machine is not None and machine.status == "Connected":
                break
            assert time.monotonic() - seen_at < 2, "not Connected within 2 s of the success line"
            time.sleep(0.05)
        assert reader.finish(timeout=60) == 0, reader.text
    finally:
        stop_agent_service(home)
    assert {t.key: t.value for t in machine.tag_set.all()} == tags
    assert machine.correlation_id == correlation_id
    assert (machine.onboarding_method, machine.onboarded_by) == (
        "ServicePrincipal",
        str(created.service_principal.client_id),
    )
    # A prefix other than /opt/azcmagent: the system files of managed identity live under it.
    conf = (prefix / "lib" / "systemd" / "system.conf.d" / "azcmagent.conf").read_text().splitlines()
    assert conf[1:] == [
        "[Manager]",
        'DefaultEnvironment="IDENTITY_ENDPOINT=http://localhost:40342/metadata/identity/oauth2/token" '
        '"IMDS_ENDPOINT=http://localhost:40342"',
    ]
    tokens = prefix / "var" / "opt" / "azcmagent" / "tokens"
    assert tokens.is_dir() and stat.S_IMODE(tokens.stat().st_mode) == 0o750
    install = (prefix / "etc" / "install.json").read_text()
    assert tls_live_server.url in install and str(prefix / "etc" / "portal-ca.pem") in install
    assert (prefix / "venv" / "bin" / "python").exists() and os.access(prefix / "bin" / "azcmagent", os.X_OK)
    version = subprocess.run(
        [str(prefix / "bin" / "azcmagent"), "version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.strip() == "azcmagent version 1.50.0"
    assert (
        "site-packages"
        in subprocess.run(
            [str(prefix / "venv" / "bin" / "python"), "-c", "import azcmagent; print(azcmagent.__file__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    ), "the agent runs from the installed wheel, not from the source tree"
