"""The Python example of docs/api.md runs, unmodified, against the portal over TLS."""

from __future__ import annotations

import pathlib
import re

from machines.models import ResourceGroup

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "api.md"


def python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_docs_python_example_works(tls_live_server, subscription, monkeypatch, capsys):
    from identity.service_principals import service_principal_create

    created = service_principal_create(display_name="docs", role="Contributor", scope=subscription.arm_id)
    for name, value in {
        "ARC_URL": tls_live_server.url,
        "ARC_CA": tls_live_server.ca_file,
        "ARC_SUBSCRIPTION_ID": str(subscription.subscription_id),
        "ARC_TENANT_ID": str(subscription.tenant.tenant_id),
        "ARC_CLIENT_ID": str(created.service_principal.client_id),
        "ARC_CLIENT_SECRET": created.secret,
    }.items():
        monkeypatch.setenv(name, value)
    exec(compile(python_example(), str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102 - our own docs
    printed = capsys.readouterr().out
    assert subscription.display_name in printed
    assert "server-01" in printed and "AWAITING_CONNECTION" in printed and "{'env': 'prod'}" in printed
    assert "MachineNotConnected" in printed  # extensions need the machine's agent
    assert not ResourceGroup.objects.filter(name="rg-docs").exists()  # the example cleans up after itself
