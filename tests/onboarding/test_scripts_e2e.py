"""End to end: the wizard's Linux script, run for real against the portal over TLS.

Real bash, curl, TLS (the test server's certificate is issued by the portal CA), the real installer served at
/downloads/, the agent wheel it installs into a virtual environment, and ``azcmagent connect`` with a service principal.
Only ``sudo`` and ``sleep`` are stubs. The machine must appear with exactly the hostile tags that were entered. It runs
twice: with the CA and proxy variables scrubbed, and with the host environment a user has (REQUESTS_CA_BUNDLE,
SSL_CERT_FILE, CURL_CA_BUNDLE and PIP_CERT at the system bundle, which lacks the portal CA): the pinned CA must win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid

import pytest

from identity.models import Role
from identity.service_principals import service_principal_create
from machines.models import Machine
from onboarding.scripts import ScriptOptions
from onboarding.services import script_generation_create
from tests.agent_env import SYSTEM_CA_BUNDLE, agent_environment, host_environment

pytestmark = pytest.mark.integration

HOSTILE_TAGS = {
    "Datacenter": "CH01",
    "Owner": "Shared Infrastructure Services",
    "Note": "'; rm -rf ~; ' $(touch /tmp/pwned-MARK) `whoami` \"; Remove-Item C:\\ -Recurse; \" $env:PATH",
    "City": "Zürich ‘quoted’",
}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("environment", [agent_environment, host_environment], ids=["scrubbed", "host-ca-bundles"])
def test_generated_linux_script_onboards_a_machine_through_the_real_installer(
    tls_live_server, subscription, settings, tmp_path, environment
):
    if environment is host_environment and not os.path.exists(SYSTEM_CA_BUNDLE):
        pytest.fail(f"{SYSTEM_CA_BUNDLE} is missing: install ca-certificates")
    from machines.services import resource_group_create

    settings.ARC_PUBLIC_BASE_URL = tls_live_server.url
    resource_group_create(subscription=subscription, name="arc-e2e", location="westeurope")
    principal = service_principal_create(
        display_name="e2e", role=Role.ONBOARDING, scope=f"/subscriptions/{subscription.subscription_id}"
    )
    mark = uuid.uuid4().hex
    tags = {k: v.replace("MARK", mark) for k, v in HOSTILE_TAGS.items()}
    generated = script_generation_create(
        options=ScriptOptions(
            os="linux",
            subscription_id=str(subscription.subscription_id),
            resource_group="arc-e2e",
            location="westeurope",
            tags=tags,
            service_principal_id=str(principal.service_principal.client_id),
            service_principal_secret=principal.secret,
        ),
        created_by_name="e2e",
    )
    script = tmp_path / "OnboardingScript.sh"
    script.write_text(generated.script)

    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (stubs / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = environment(
        PATH=f"{stubs}:{os.environ['PATH']}",
        HOME=str(home),
        TMPDIR=str(tmp_path),
        AZCMAGENT_PREFIX=str(tmp_path / "prefix"),
        AZCMAGENT_PYTHON=sys.executable,
        # Offline install: the agent's dependencies come from this interpreter's site-packages.
        AZCMAGENT_SITE_PACKAGES=sysconfig.get_paths()["purelib"],
        PIP_NO_INDEX="1",
        AZCMAGENT_HOME=str(tmp_path / "agent-home"),
        AZCMAGENT_VM_UUID=str(uuid.uuid4()).upper(),
        AZCMAGENT_NO_SERVICE="1",
    )
    result = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully Onboarded Resource to Azure" in result.stdout + result.stderr

    machine = Machine.objects.get(resource_group__name="arc-e2e")
    assert {t.key: t.value for t in machine.tag_set.all()} == tags
    assert machine.correlation_id == str(generated.generation.correlation_id)
    assert (tmp_path / "prefix" / "bin" / "azcmagent").exists()
    assert not list((tmp_path).glob("arcportal-onboarding.*")), "the script's temporary directory is left behind"
    assert not os.path.exists(f"/tmp/pwned-{mark}")
