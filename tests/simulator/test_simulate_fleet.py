"""The fleet simulator (the ``simulator`` package) and ``manage.py simulate_fleet`` against the in-process TLS portal.

Every simulated machine goes through the real protocol (ARM PUT with its own key, CSR → certificate, signed
heartbeats); the portal side is checked from the database and from a count of the heartbeat requests it received.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import random
import re
import shutil
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from azcmagent import identity
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from machines.conf import status_thresholds
from machines.models import Machine
from machines.status import derive_status
from simulator import fleet as simulator
from simulator.config import FleetConfig, SimulatedMachine, machine_facts, offline_indexes
from simulator.fleet import FleetSimulation
from simulator.keys import fill_key_cache, key_cache_path, load_cached_key
from simulator.management.commands.simulate_fleet import run_coroutine
from simulator.stats import FleetStats, HeartbeatCounters, percentile
from simulator.transport import (
    HEARTBEAT_ERRORS,
    HeartbeatSender,
    HeartbeatTransportError,
    parse_response,
    skip_failing_sniffio_import,
)
from tests.astutil import parse

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_PATH = re.compile(r"^/his/machines/([0-9a-f-]{36})/heartbeat$")


@pytest.fixture
def heartbeats_received(tls_live_server):
    """Count the heartbeat requests the live server answered 200, per vmId."""
    received: Counter[str] = Counter()
    httpd = tls_live_server.thread.httpd
    app = httpd.get_app()

    def counting(environ, start_response):
        match = HEARTBEAT_PATH.match(environ.get("PATH_INFO", ""))

        def start(status, headers, exc_info=None):
            if match and status.startswith("200"):
                received[match.group(1)] += 1
            return start_response(status, headers, exc_info)

        return app(environ, start)

    httpd.set_app(counting)
    yield received
    httpd.set_app(app)


@pytest.fixture
def onboarding_principal(subscription):
    from identity.models import Role
    from identity.service_principals import service_principal_create
    from machines.services import resource_group_create

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
def test_onboarding_first_then_a_timed_window_counted_apart(
    tls_live_server, heartbeats_received, tenant, subscription, onboarding_principal, tmp_path
):
    """``onboarding_timeout``: the window starts once every machine has onboarded; its heartbeats are counted apart,
    and onboarding plus window add up to what the portal received. Keys come from a key cache."""
    group, created = onboarding_principal
    assert fill_key_cache(tmp_path, 4, workers=0) == 4
    config = _config(
        tls_live_server,
        tenant,
        subscription,
        group,
        created,
        machines=4,
        offline_fraction=0.25,
        duration=1.5,
        onboarding_timeout=120,
        key_dir=str(tmp_path),
    )
    windows = []

    stats = run_coroutine(lambda: FleetSimulation(config, on_window_start=lambda: windows.append(1)).run())

    assert windows == [1]
    assert stats.onboarded == 4 and not stats.onboarding_failures and stats.not_started == 0
    assert stats.window is not None and stats.window_started_at > 0
    onboarded_by = stats.window_started_at - stats.started_at
    assert all(m.onboarded_after <= onboarded_by for m in stats.machines)  # the window came after all of them
    assert stats.finished_at >= stats.window_started_at
    window = stats.window
    assert window.sent == window.accepted > 0
    assert window.rejected_total == 0 and window.lost == 0 and not window.errors
    assert len(window.round_trips) == len(window.slot_waits) == window.sent
    assert window.sent < stats.heartbeats_sent  # the first heartbeats were sent while onboarding
    assert sum(m.window_heartbeats_accepted for m in stats.machines) == window.accepted
    online = [m for m in stats.machines if m.stays_online]
    assert len(online) == 3 and all(m.window_heartbeats_accepted >= 1 for m in online)
    # The stopped machine sent only the first heartbeat: in the window if it was the last to onboard.
    assert all(m.heartbeats_sent == 1 >= m.window_heartbeats_accepted for m in stats.machines if not m.stays_online)
    assert stats.heartbeats_sent == stats.heartbeats_accepted == sum(heartbeats_received.values())
    summary = "\n".join(stats.summary_lines())
    assert f"{window.sent} sent, {window.accepted} accepted, 0 rejected, 0 lost" in summary

    # Each machine registered its own key from the cache.
    stored = {m.name: m.client_public_key for m in Machine.objects.filter(resource_group=group)}
    for machine in stats.machines:
        assert stored[machine.name] == identity.public_key_b64(load_cached_key(tmp_path, machine.index))
    assert len(set(stored.values())) == 4


def test_a_key_used_twice_fails_that_machine(tls_live_server, tenant, subscription, onboarding_principal, tmp_path):
    group, created = onboarding_principal
    fill_key_cache(tmp_path, 2, workers=0)
    shutil.copyfile(key_cache_path(tmp_path, 0), key_cache_path(tmp_path, 1))
    config = _config(
        tls_live_server,
        tenant,
        subscription,
        group,
        created,
        machines=2,
        offline_fraction=1.0,
        concurrency=1,
        key_dir=str(tmp_path),
    )

    stats = run_coroutine(FleetSimulation(config).run)

    assert stats.onboarded == 1
    assert stats.onboarding_failures == Counter({"key already used by another machine": 1})
    assert Machine.objects.filter(resource_group=group).count() == 1


@override_settings(ARC_HEARTBEAT_INTERVAL_SECONDS=1, ARC_OFFLINE_AFTER_SECONDS=30)
def test_command_creates_group_and_principal_and_prints_counters(tls_live_server, heartbeats_received, subscription):
    from identity.models import ServicePrincipal

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


@override_settings(ARC_HEARTBEAT_INTERVAL_SECONDS=1, ARC_OFFLINE_AFTER_SECONDS=30)
def test_command_onboards_first_with_a_key_cache(tls_live_server, heartbeats_received, subscription, tmp_path):
    keys = tmp_path / "keys"
    out = _CapturingStream()
    call_command(
        "simulate_fleet",
        "--machines=2",
        "--duration=1",
        "--onboarding-timeout=60",
        "--interval=0.5",
        "--key-workers=0",
        f"--key-cache={keys}",
        "--name-prefix=cached",
        f"--portal-url={tls_live_server.url}",
        f"--ca-file={tls_live_server.ca_file}",
        "--resource-group=rg-cached",
        stdout=out,
    )

    text = out.getvalue()
    assert "Made 2 machine keys" in text
    match = re.search(r"timed window \(.*\): (\d+) sent, (\d+) accepted, 0 rejected, 0 lost", text)
    assert match and match.group(1) == match.group(2) and int(match.group(1)) > 0
    assert sorted(p.name for p in keys.iterdir()) == ["key-00000.pem", "key-00001.pem"]
    machines = {m.name: m for m in Machine.objects.filter(resource_group__name="rg-cached")}
    for index in range(2):
        expected = identity.public_key_b64(load_cached_key(keys, index))
        assert machines[f"cached-{index:05d}"].client_public_key == expected


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
        ["--machines=5", "--onboarding-timeout=0"],
        ["--machines=5", "--onboarding-timeout=-5"],
        ["--machines=5", f"--key-cache={__file__}"],  # a file, not a directory
        [],
    ],
)
def test_command_refuses_bad_arguments(argv, db):
    from identity.models import ServicePrincipal
    from machines.models import ResourceGroup

    with pytest.raises(CommandError):
        call_command("simulate_fleet", *argv)
    assert not ServicePrincipal.objects.exists()
    assert not ResourceGroup.objects.exists()


def test_command_needs_the_ca_file_before_creating_anything(subscription, tmp_path):
    from identity.models import ServicePrincipal
    from machines.models import ResourceGroup

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
    for bad in (
        {"machines": 0},
        {"machines": 1, "offline_fraction": 2},
        {"machines": 1, "interval": -1},
        {"machines": 1, "onboarding_timeout": 0},
    ):
        with pytest.raises(ValueError):
            FleetConfig(**base, **bad).validate()
    with pytest.raises(ValueError, match="https"):
        FleetConfig(**{**base, "portal_url": "http://127.0.0.1:1"}, machines=1).validate()


SIMULATION_MODULES = ["config", "keys", "transport", "tokens", "stats", "fleet"]


@pytest.mark.parametrize("module", SIMULATION_MODULES)
def test_the_simulation_modules_import_no_django_and_no_portal_app(module):
    tree = parse(ROOT / "simulator" / f"{module}.py")
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    portal = ("django", "rest_framework", "arcportal", "identity", "machines", "onboarding", "agentplane")
    assert not [n for n in imported if n.split(".")[0] in portal]


def test_the_simulation_speaks_through_the_agent_s_own_protocol_helpers():
    imported = set()
    for module in SIMULATION_MODULES:
        for node in ast.walk(parse(ROOT / "simulator" / f"{module}.py")):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    assert {"azcmagent.identity", "azcmagent.client", "azcmagent.service"} <= imported


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


def _offline_config(**overrides) -> FleetConfig:
    options = {
        "portal_url": "https://127.0.0.1:1",
        "tenant_id": "t",
        "subscription_id": "s",
        "resource_group": "rg",
        "client_id": "c",
        "client_secret": "x",
        "machines": 2,
        "key_workers": 0,
    }
    return FleetConfig(**{**options, **overrides})


def test_key_cache_makes_only_missing_keys_each_distinct_and_private(tmp_path):
    made = []
    assert fill_key_cache(tmp_path, 2, workers=0, on_key=made.append) == 2
    assert made == [0, 1]
    assert fill_key_cache(tmp_path, 3, workers=0, on_key=made.append) == 1  # only the one it lacks
    assert made == [0, 1, 2]
    assert fill_key_cache(tmp_path, 3, workers=0) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key-00000.pem", "key-00001.pem", "key-00002.pem"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.iterdir())
    moduli = {load_cached_key(tmp_path, i).public_key().public_numbers().n for i in range(3)}
    assert len(moduli) == 3
    assert all(load_cached_key(tmp_path, i).key_size == 2048 for i in range(3))


def test_key_cache_in_a_process_pool(tmp_path):
    assert fill_key_cache(tmp_path, 2, workers=1) == 2
    assert len({key_cache_path(tmp_path, i).read_bytes() for i in range(2)}) == 2


def test_a_key_cache_short_of_keys_is_refused_before_the_run(tmp_path):
    fill_key_cache(tmp_path, 1, workers=0)
    with pytest.raises(ValueError, match=r"lacks 1 of the 2 keys \(first: key-00001.pem\)"):
        FleetSimulation(_offline_config(machines=2, key_dir=str(tmp_path)))


def test_the_window_starts_when_the_last_machine_is_done_onboarding():
    async def main():
        started = []
        simulation = FleetSimulation(
            _offline_config(duration=30, onboarding_timeout=600), on_window_start=lambda: started.append(1)
        )
        simulation.deadline = time.monotonic() + 630  # what run() sets: the latest the window can end
        simulation._onboarding_done()
        assert started == [] and simulation.stats.window_started_at == 0
        simulation._onboarding_done()
        return simulation, started

    simulation, started = run_coroutine(main)

    assert started == [1]
    assert simulation.stats.window_started_at > 0
    assert simulation.deadline == simulation._window_start + 30


def test_no_window_without_onboarding_timeout():
    async def main():
        simulation = FleetSimulation(_offline_config(duration=30))
        simulation.deadline = time.monotonic() + 30
        simulation._onboarding_done()
        simulation._onboarding_done()
        return simulation

    simulation = run_coroutine(main)

    assert simulation.stats.window is None and simulation.stats.window_started_at == 0
    assert "timed window" not in "\n".join(simulation.stats.summary_lines())


def test_a_sleep_past_the_old_deadline_goes_on_when_the_window_moved_it(monkeypatch):
    """A machine asleep when the window starts wakes at the old deadline, sees the new one and sleeps the rest of
    its interval instead of beating early. Fake clock: each wait advances it by its timeout."""
    simulation = run_coroutine(lambda: _make_simulation(_offline_config(duration=100, onboarding_timeout=10)))
    clock = [1000.0]
    waits = []
    window_starts = [100]  # during the first wait, the window starts: the deadline moves 100 s on
    simulation.deadline = clock[0] + 10

    async def fake_wait_for(awaitable, timeout):
        awaitable.close()
        waits.append(timeout)
        clock[0] += timeout
        if window_starts:
            simulation.deadline = clock[0] + window_starts.pop()
        raise TimeoutError

    monkeypatch.setattr(simulator, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    monkeypatch.setattr(simulator, "asyncio", SimpleNamespace(wait_for=fake_wait_for))

    assert run_coroutine(lambda: simulation._sleep(60)) is True
    assert waits == [10, 50]  # to the old deadline, then the rest of the 60 s
    assert clock[0] == 1060

    waits.clear()
    simulation.deadline = clock[0] + 5
    assert run_coroutine(lambda: simulation._sleep(60)) is False  # the deadline comes first and stays: stop
    assert waits == [5]


async def _make_simulation(config):
    return FleetSimulation(config)


def test_summary_reports_the_window_apart():
    stats = FleetStats(machines=[SimulatedMachine(index=0, name="m", stays_online=True, onboarded=True)])
    stats.started_at, stats.finished_at = 1000.0, 1700.0
    stats.heartbeats_sent, stats.heartbeats_accepted = 14, 12
    stats.heartbeats_rejected[503] = 1
    stats.window = HeartbeatCounters()
    assert "timed window: did not start" in "\n".join(stats.summary_lines())

    stats.window_started_at = 1100.0
    stats.window = HeartbeatCounters(sent=10, accepted=8, rejected=Counter({503: 1}), round_trips=[0.1, 0.2, 0.4])
    stats.window.slot_waits = [0.0, 0.0, 0.5]
    text = "\n".join(stats.summary_lines())
    assert "heartbeats: 14 sent, 12 accepted, 1 rejected, 1 lost" in text
    assert "timed window (600.0 s after the fleet had onboarded): 10 sent, 8 accepted, 1 rejected, 1 lost" in text
    assert "p50 200.0 ms, p95 400.0 ms, p99 400.0 ms, max 400.0 ms" in text
    assert "waits for a request slot before that: p50 0.0 ms" in text


def test_percentile_is_nearest_rank():
    samples = list(range(1, 101))
    assert percentile(samples, 50) == 50
    assert percentile(samples, 95) == 95
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert percentile([5, 1, 4, 2, 3], 60) == 3
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_missing_sniffio_is_marked_absent(monkeypatch):
    """httpcore imports sniffio for every lock; when it is not installed, the failed import must be cheap."""
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    try:
        skip_failing_sniffio_import()
        assert "sniffio" in sys.modules and sys.modules["sniffio"] is None
        with pytest.raises(ImportError):
            import sniffio  # noqa: F401
    finally:
        if "sniffio" in sys.modules and sys.modules["sniffio"] is None:
            del sys.modules["sniffio"]


def test_an_installed_sniffio_is_left_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: SimpleNamespace(name=name))
    skip_failing_sniffio_import()
    assert "sniffio" not in sys.modules


def test_heartbeat_request_bytes_are_a_plain_http11_post():
    sender = HeartbeatSender("https://127.0.0.1:8443/", True, timeout=5, user_agent="ua")
    raw = sender.request_bytes("/his/machines/x/heartbeat", b'{"a":1}', {"Authorization": "Bearer t"})
    assert raw == (
        b"POST /his/machines/x/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nUser-Agent: ua\r\n"
        b"Authorization: Bearer t\r\nContent-Length: 7\r\nConnection: close\r\n\r\n"
        b'{"a":1}'
    )
    with pytest.raises(ValueError, match="https"):
        HeartbeatSender("http://127.0.0.1:8000", True, timeout=5, user_agent="ua")


def test_parse_response_reads_status_and_body():
    answer = parse_response(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"a": 12}xx'
    )
    assert answer.status_code == 200 and answer.json() == {"a": 12}
    chunked = parse_response(
        b'HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    )
    assert chunked.status_code == 410 and chunked.json() == {"a": 1}
    until_close = parse_response(b"HTTP/1.0 403 Forbidden\r\n\r\n{}")
    assert until_close.status_code == 403 and until_close.content == b"{}"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # the connection ended inside the head
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}",
    ],
)
def test_parse_response_refuses_what_is_not_a_whole_answer(raw):
    with pytest.raises(HeartbeatTransportError):
        parse_response(raw)


def test_a_heartbeat_to_a_server_that_hangs_up_is_an_error_not_an_answer():
    async def main():
        async def hang_up(reader, writer):
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = HeartbeatSender(f"https://127.0.0.1:{port}", True, timeout=10, user_agent="ua")
        try:
            async with server:
                await sender.post("/his/machines/x/heartbeat", b"{}", {})
        finally:
            server.close()

    with pytest.raises(HEARTBEAT_ERRORS):
        run_coroutine(main)
