"""docs/cli.md, verbatim: every shell line of its fenced blocks (but the ``manage.py`` one, which
tests/test_newcomer.py runs, and whose service principal the ``az_principal`` fixture stands for) runs in order in
one bash against a live TLS portal, in a directory laid out like the repository (``.venv-az``, ``var/pki/ca.pem``).
Only ``<placeholders>`` and the port change. Then each command's output is checked."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from machines.models import Machine, ResourceGroup
from tests.cli.conftest import ROOT, az_environment
from tests.test_newcomer import FENCE, PLACEHOLDER, command_lines

DOC = ROOT / "docs" / "cli.md"
MARK = "=== command "


def doc_commands() -> list[str]:
    lines = []
    for match in FENCE.finditer(DOC.read_text()):
        if match["info"].strip() in ("bash", "sh", "shell", ""):
            lines += [line for line in command_lines(match["body"]) if not line.startswith(".venv/bin/python")]
    return lines


def test_the_page_shows_setup_and_tour():
    commands = doc_commands()
    assert commands[0].startswith("export PATH=$PWD/.venv-az/bin:$PATH")
    assert "az cloud register --name ArcPortal --endpoint-resource-manager https://127.0.0.1:8443/" in commands[1]
    assert commands[2].startswith("az login --service-principal")
    verbs = ("account show", "group create", "resource list", "resource show", "resource tag", "rest", "role", "lock")
    for verb in verbs:
        assert any(c.startswith(f"az {verb}") for c in commands), verb


def test_every_command_of_docs_cli_runs_verbatim(az_cli, az_principal, subscription, tmp_path):
    from identity.service_principals import service_principal_create

    server = az_cli.server
    auditor = service_principal_create(
        display_name="auditor", role="Reader", scope=f"{subscription.arm_id}/resourceGroups/rg-x"
    )
    work = tmp_path / "checkout"
    (work / "var").mkdir(parents=True)
    (work / ".venv-az").symlink_to(ROOT / ".venv-az")
    (work / "var" / "pki").symlink_to(Path(server.ca_file).parent)
    values = {
        "<appId>": az_principal[0],
        "<password>": az_principal[1],
        "<tenant-id>": str(subscription.tenant.tenant_id),
        "<subscription-id>": str(subscription.subscription_id),
        "<object-id>": str(auditor.service_principal.object_id),
    }
    script = ["set -euo pipefail"]
    commands = doc_commands()
    for number, command in enumerate(commands):
        text = command.replace("127.0.0.1:8443", f"127.0.0.1:{server.port}")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        assert not PLACEHOLDER.findall(text), f"unknown placeholder in {command}"
        script += [f"echo '{MARK}{number}'", text]
    env = az_environment(tmp_path / "unused", server.ca_file)
    for name in ("AZURE_CONFIG_DIR", "REQUESTS_CA_BUNDLE"):
        env.pop(name)  # the page sets them
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    outputs = dict.fromkeys(commands, "")
    for chunk in result.stdout.split(MARK)[1:]:
        number, _, output = chunk.partition("\n")
        outputs[commands[int(number)]] = output.strip()

    def output(fragment: str) -> str:
        [command] = [c for c in commands if fragment in c]
        return outputs[command]

    assert (work / "var" / "azure-cli" / "config").exists()  # the CLI's configuration stayed in var/azure-cli
    assert '"cloud": "ArcPortal"' in output("az account show")
    assert output("az account list") == subscription.display_name
    assert '"tags": {\n    "env": "demo"\n  }' in output("az group create")
    assert "rg-tour" in output("az group list").splitlines()
    sub = f"/subscriptions/{subscription.subscription_id}"
    assert output("az resource list --resource-type") == (
        f"{sub}/resourceGroups/rg-tour/providers/Microsoft.HybridCompute/machines/web-01"
    )
    assert output("az resource show") == '"AwaitingConnection"'
    assert re.sub(r"\s", "", output("az resource tag")) == '{"env":"demo","owner":"ops"}'
    assert output("--tag owner=ops") == "web-01"
    generic = output("resources?api-version")
    assert '"name": "web-01"' in generic and '"type": "Microsoft.HybridCompute/machines"' in generic
    assert output("az role assignment list") == "Reader"
    assert output("az lock list") == "no-delete"
    assert output("az resource delete") == output("az group delete") == output("az lock delete") == ""
    assert not Machine.objects.filter(name="web-01").exists()
    assert not ResourceGroup.objects.filter(name="rg-tour").exists()
