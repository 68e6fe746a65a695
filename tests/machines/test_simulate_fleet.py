"""The fleet simulator (``machines/simulator.py``) and ``manage.py simulate_fleet`` against the in-process TLS portal.

Every simulated machine goes through the real protocol (ARM PUT with its own key, CSR → certificate, signed
heartbeats); the portal side is checked from the database and from a count of the heartbeat requests it received.
"""

from __future__ import annotations

import ast
import asyncio
import random
import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from machines.conf import status_thresholds
from machines.management.commands.simulate_fleet import run_coroutine
from machines.models import Machine
from machines.simulator import FleetConfig, FleetSimulation, machine_facts, offline_indexes
from machines.status import derive_status
from tests.astutil import parse

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_PATH = re.compile(r"^/his/machines/([0-9a-f-]{36})/heartbeat$")


@pytest.fixture
def heartbeats_received(tls_live_server):
    """Serialize the live server's requests (it shares one in-memory SQLite connection between threads, see
    tests/agent/conftest.py::db_lock) and count the heartbeat requests it answered 200, per vmId."""
    lock = threading.RLock()
    received: Counter[str] = Counter()
    httpd = tls_live_server.thread.httpd
    app = httpd.get_app()

    def counting(environ, start_response):
        match = HEARTBEAT_PATH.match(environ.get("PATH_INFO", ""))

        def start(status, headers, exc_info=None):
            if match and status.startswith("200"):
                received[match.group(1)] += 1
            return start_response(status, headers, exc_info)

        with lock:
            return app(environ, start)

    httpd.set_app(counting)
    yield received
    httpd.set_app(app)


@pytest.fixture
def onboarding_principal(subscription):
    from machines.services import resource_group_create
    from onboarding.models import Role
    from onboarding.service_principals import service_principal_create

    group = resource_group_create(subscription=subscription, name="arc-simulated", location="westeurope")
    created = service_principal_create(display_name="simulator", role=Role.ONBOARDING, scope=group.arm_id)
    return group, created


def _config(tls_live_server, tenant, subscription, group, created, **overrides) -> FleetConfig:
    options = {
        "portal_url": tls_live_server.url,
        "ca_file": tls_live_server.ca_file,
        "tenant_id": str(tenant.tenant_id),
        "subscription_id": str(subscription.subscription_id),
        "resource_group": group.name,
        "client_id": str(created.service_principal.client_id),
        "client_secret": created.secret,
        "machines": 5,
        "offline_fraction": 0.4,
        "duration": 4.0,
        "interval": 0.5,
        "concurrency": 2,
        "name_prefix": "sim-test",
        "key_workers": 2,
        "seed": 7,
    }
    options.update(overrides)
    return FleetConfig(**options)


@override_settings(ARC_HEARTBEAT_INTERVAL_SECONDS=1, ARC_OFFLINE_AFTER_SECONDS=30)
def test_fleet_onboards_with_own_certificates_and_heartbeats(
    tls_live_server, heartbeats_received, tenant, subscription, onboarding_principal
):
    group, created = onboarding_principal
    config = _config(tls_live_server, tenant, subscription, group, created, duration=60)

    async def main():
        """Stop once every heartbeating machine has beaten three times (``duration`` only bounds the test)."""
        stop = asyncio.Event()
        simulation = FleetSimulation(config, stop=stop)

        async def watch():
            machines = simulation.stats.machines
            while not all(m.onboarded and (m.heartbeats_accepted >= 3 or not m.stays_online) for m in machines):
                await asyncio.sleep(0.05)
            stop.set()

        watcher = asyncio.ensure_future(watch())
        try:
            return await simulation.run()
        finally:
            watcher.cancel()

    stats = run_coroutine(main)

    assert stats.onboarded == 5
    assert not stats.onboarding_failures
    assert stats.not_started == 0
    assert stats.heartbeats_sent == stats.heartbeats_accepted
    assert stats.rejected == 0
    assert stats.lost == 0
    assert not stats.heartbeat_errors

    machines = {m.name: m for m in Machine.objects.filter(resource_group=group)}
    assert sorted(machines) == [f"sim-test-{i:05d}" for i in range(5)]
    thumbprints = {m.certificate_thumbprint for m in machines.values()}
    assert len(thumbprints) == 5 and "" not in thumbprints
    assert len({m.client_public_key for m in machines.values()}) == 5
    assert all(m.provisioning_state == "Succeeded" for m in machines.values())
    for simulated in stats.machines:
        stored = machines[simulated.name]
        assert str(stored.vm_id) == simulated.vm_id
        assert stored.certificate_thumbprint.upper() == simulated.thumbprint
        assert stored.status == "Connected"  # recorded by its first heartbeat
        assert stored.last_heartbeat_at is not None

    online = [m for m in stats.machines if m.stays_online]
    stopped = [m for m in stats.machines if not m.stays_online]
    assert len(online) == 3 and len(stopped) == 2
    # The portal received exactly what the simulator counted, machine by machine.
    assert heartbeats_received == Counter({m.vm_id: m.heartbeats_accepted for m in stats.machines})
    assert sum(heartbeats_received.values()) == stats.heartbeats_accepted
    for machine in stopped:  # the first heartbeat of `connect`, then silence
        assert machine.heartbeats_sent == machine.heartbeats_accepted == 1
    for machine in online:
        assert machine.heartbeats_sent == machine.heartbeats_accepted >= 3
    now, thresholds = timezone.now(), status_thresholds()
    derived = [
        derive_status(last_heartbeat_at=machines[m.name].last_heartbeat_at, now=now, thresholds=thresholds)
        for m in online
    ]
    assert derived == ["Connected"] * 3


def test_stop_event_ends_the_fleet_before_the_deadline(
    tls_live_server, heartbeats_received, tenant, subscription, onboarding_principal
):
    """Ctrl+C: the command sets the stop event; machines finish the request in flight and the counters add up."""
    group, created = onboarding_principal
    config = _config(
        tls_live_server, tenant, subscription, group, created, machines=2, offline_fraction=0, duration=600
    )

    async def main():
        stop = asyncio.Event()
        onboarded = []

        def on_onboarded(machine):
            onboarded.append(machine)
            if len(onboarded) == 2:
                asyncio.get_running_loop().call_later(0.6, stop.set)

        return await FleetSimulation(config, on_onboarded=on_onboarded, stop=stop).run()

    stats = run_coroutine(main)

    assert stats.interrupted
    assert stats.onboarded == 2
    assert stats.heartbeats_sent == stats.heartbeats_accepted >= 2
    assert stats.lost == 0
    assert sum(heartbeats_received.values()) == stats.heartbeats_accepted


def test_onboarding_failures_are_counted_not_raised(tls_live_server, tenant, subscription, onboarding_principal):
    group, created = onboarding_principal
    config = _config(
        tls_live_server,
        tenant,
        subscription,
        group,
        created,
        machines=2,
        resource_group="not-in-scope",
        key_workers=0,
    )

    stats = run_coroutine(FleetSimulation(config).run)

    assert stats.onboarded == 0
    assert sum(stats.onboarding_failures.values()) == 2
    assert all(reason.startswith("PUT 40") for reason in stats.onboarding_failures)
    assert stats.heartbeats_sent == 0


@override_settings(ARC_HEARTBEAT_INTERVAL_SECONDS=1, ARC_OFFLINE_AFTER_SECONDS=30)
def test_command_creates_group_and_principal_and_prints_counters(tls_live_server, heartbeats_received, subscription):
    from onboarding.models import ServicePrincipal

    out = _CapturingStream()
    call_command(
        "simulate_fleet",
        "--machines=2",
        "--offline-fraction=0.5",
        "--duration=2",
        "--interval=0.5",
        "--concurrency=2",
        "--key-workers=0",
        "--name-prefix=cmd",
        f"--portal-url={tls_live_server.url}",
        f"--ca-file={tls_live_server.ca_file}",
        "--resource-group=rg-sim",
        stdout=out,
    )

    text = out.getvalue()
    assert "Created resource group rg-sim" in text
    match = re.search(r"heartbeats: (\d+) sent, (\d+) accepted, 0 rejected, 0 lost", text)
    assert match and match.group(1) == match.group(2)
    assert int(match.group(2)) == sum(heartbeats_received.values())
    assert "2 onboarded (1 heartbeating, 1 stopped after onboarding)" in text
    assert Machine.objects.filter(resource_group__name="rg-sim").count() == 2
    principal = ServicePrincipal.objects.get()
    assert principal.scope.endswith("/resourceGroups/rg-sim")
    assert principal.revoked_at is not None  # only needed while the fleet onboards


class _CapturingStream:
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def getvalue(self):
        return "".join(self.parts)


@pytest.mark.parametrize(
    "argv",
    [
        ["--machines=0"],
        ["--machines=-3"],
        ["--machines=many"],
        ["--machines=100001"],
        ["--machines=5", "--offline-fraction=1.5"],
        ["--machines=5", "--offline-fraction=-0.1"],
        ["--machines=5", "--duration=0"],
        ["--machines=5", "--interval=0"],
        ["--machines=5", "--concurrency=0"],
        ["--machines=5", "--portal-url=http://127.0.0.1:8000"],
        [],
    ],
)
def test_command_refuses_bad_arguments(argv, db):
    from machines.models import ResourceGroup
    from onboarding.models import ServicePrincipal

    with pytest.raises(CommandError):
        call_command("simulate_fleet", *argv)
    assert not ServicePrincipal.objects.exists()
    assert not ResourceGroup.objects.exists()


def test_command_needs_the_ca_file_before_creating_anything(subscription, tmp_path):
    from machines.models import ResourceGroup
    from onboarding.models import ServicePrincipal

    with pytest.raises(CommandError, match="No CA file"):
        call_command("simulate_fleet", "--machines=1", f"--ca-file={tmp_path / 'missing.pem'}")
    assert not ServicePrincipal.objects.exists()
    assert not ResourceGroup.objects.exists()


def test_command_needs_a_bootstrapped_portal(db):
    with pytest.raises(CommandError, match="bootstrap"):
        call_command("simulate_fleet", "--machines=1")


def test_offline_indexes_pick_the_rounded_share():
    assert len(offline_indexes(5, 0.4, rng=random.Random(1))) == 2
    assert len(offline_indexes(50, 0.2, rng=random.Random(1))) == 10
    assert offline_indexes(3, 0.0, rng=random.Random(1)) == set()
    assert offline_indexes(3, 1.0, rng=random.Random(1)) == {0, 1, 2}


def test_machine_facts_look_like_the_agents():
    from azcmagent import sysinfo

    facts = machine_facts("sim-00001", rng=random.Random(3))
    assert set(facts) == set(sysinfo.facts("1.0"))
    assert facts["computerName"] == "sim-00001"
    assert facts["osName"] in ("linux", "windows")


def test_config_validation():
    base = {
        "portal_url": "https://127.0.0.1:1",
        "tenant_id": "t",
        "subscription_id": "s",
        "resource_group": "rg",
        "client_id": "c",
        "client_secret": "x",
    }
    FleetConfig(**base, machines=1).validate()
    for bad in ({"machines": 0}, {"machines": 1, "offline_fraction": 2}, {"machines": 1, "interval": -1}):
        with pytest.raises(ValueError):
            FleetConfig(**base, **bad).validate()
    with pytest.raises(ValueError, match="https"):
        FleetConfig(**{**base, "portal_url": "http://127.0.0.1:1"}, machines=1).validate()


def test_simulator_module_imports_no_django():
    tree = parse(ROOT / "machines" / "simulator.py")
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not [n for n in imported if n == "django" or n.startswith(("django.", "rest_framework", "machines."))]
    assert {"azcmagent.identity", "azcmagent.client", "azcmagent.service"} & imported or "azcmagent" in imported


def test_the_fleet_runs_where_an_event_loop_already_runs():
    """Playwright's sync API (tests/browser) leaves an event loop running in the main thread for the session."""

    results = []

    async def outer():
        results.append(run_coroutine(lambda: asyncio.sleep(0, result=42)))

    # A thread of its own, so this test has a loop to run whether or not the session already runs one here.
    thread = threading.Thread(target=lambda: asyncio.run(outer()))
    thread.start()
    thread.join(timeout=30)
    assert results == [42]
