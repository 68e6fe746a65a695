"""Issue 15 item 3: scale-out on loopback. Two web nodes (granian, the production command of ``deploy/``) behind nginx
(the site of ``deploy/nginx/arcportal.conf``, TLS with the portal's server certificate), two Celery workers and one
beat, one PostgreSQL database, one Redis DB. The fleet simulator (``manage.py simulate_fleet``) onboards 2,000 agents
through nginx, then heartbeats for 3 minutes with the heartbeat interval shortened to 30 s (6 beats per machine);
one web node is killed with SIGKILL a minute into those 3 minutes and started again 15 s later.

Required, and checked from three sides (the simulator's counters, nginx's access log, the database):

* 0 heartbeats lost: every heartbeat got an answer; a heartbeat that failed (in flight on the killed node: 502) was
  sent again by its agent (backoff, a fresh token) and accepted; no machine went longer between two accepted
  heartbeats than an interval plus a retry; and every machine's last accepted heartbeat is the one in the database;
* every machine's status right at the end: recorded and derived Connected, all 2,000;
* no duplicate status events: exactly one (→ Connected) per machine.

PostgreSQL + Redis + nginx only (CI's PostgreSQL pass installs nginx); it is marked ``scale_out`` and left out of
the moved-clock pass (docs/decisions.md). Every wait is bounded; every process is killed at teardown.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

from arcportal.serving import granian_command
from deploy.nginx import NGINX, make_prefix, render_site, render_standalone
from tests.integration.conftest import BEAT, ROOT, WORKER, free_port, wait_until

MACHINES = 2000
INTERVAL = 30
OFFLINE_AFTER = 3 * INTERVAL
WINDOW = 180
KILL_AFTER = 60
DOWN_FOR = 15
# A machine's gap between two accepted heartbeats: at most the interval, one round trip, slot waits and one retry
# after a failure (5 s backoff); a beat lost without a retry makes it about two intervals (≥ 54 s).
MAX_GAP = 1.6 * INTERVAL
KEY_CACHE = ROOT / "var" / "test-keys" / "scale-out"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.scale_out,
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
            and os.environ.get("REDIS_URL")
            and Path(NGINX).exists()
        ),
        reason="needs PostgreSQL (DATABASE_URL), Redis (REDIS_URL) and nginx (/usr/sbin/nginx): CI's PostgreSQL pass",
    ),
]


def web_node(port: int) -> list[str]:
    return granian_command(bind=f"127.0.0.1:{port}", workers=1, interface="wsgi", threads=4)


def read_log(path: Path) -> list[tuple[float, int, str, str, str]]:
    """(time, status, method, path, upstream) of every request nginx logged."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        parts = line.split(" ", 4)
        if len(parts) >= 4 and parts[1].isdigit():
            rows.append((float(parts[0]), int(parts[1]), parts[2], parts[3], parts[4] if len(parts) > 4 else ""))
    return rows


def heartbeat_vm(path: str) -> str | None:
    parts = path.split("/")
    return parts[3] if len(parts) == 5 and parts[1:3] == ["his", "machines"] and parts[4] == "heartbeat" else None


STATE = """
import json
from machines.heartbeats import heartbeat_flush
from machines.models import Machine, MachineStatusEvent
from machines.conf import status_thresholds
from machines.status import derive_status
from django.utils import timezone
heartbeat_flush()
now, thresholds = timezone.now(), status_thresholds()
events = {}
rows = MachineStatusEvent.objects.values_list("machine_id", "from_status", "to_status")
for machine_id, from_status, to_status in rows:
    events.setdefault(machine_id, []).append([from_status, to_status])
print(json.dumps({"now": now.timestamp(), "machines": [
    {"vm": str(m.vm_id), "status": m.status, "derived": derive_status(last_heartbeat_at=m.last_heartbeat_at, now=now,
     thresholds=thresholds), "last": m.last_heartbeat_at.timestamp() if m.last_heartbeat_at else None,
     "events": events.get(m.id, [])}
    for m in Machine.objects.filter(resource_group__name="scale-out")]}))
"""


def summary_numbers(output: str) -> dict[str, int]:
    """The counters of simulate_fleet's summary (docs/simulator.md)."""
    found = {}
    onboarding = re.search(
        r"machines: (\d+) requested, (\d+) onboarded .*?, (\d+) onboarding failures, (\d+) not", output
    )
    beats = re.search(r"^heartbeats: (\d+) sent, (\d+) accepted, (\d+) rejected, (\d+) lost", output, re.MULTILINE)
    window = re.search(r"timed window \(.*?\): (\d+) sent, (\d+) accepted, (\d+) rejected, (\d+) lost", output)
    assert onboarding and beats and window, output[-3000:]
    found.update(zip(("requested", "onboarded", "failures", "not_started"), map(int, onboarding.groups()), strict=True))
    found.update(zip(("sent", "accepted", "rejected", "lost"), map(int, beats.groups()), strict=True))
    found.update(zip(("w_sent", "w_accepted", "w_rejected", "w_lost"), map(int, window.groups()), strict=True))
    return found


def test_two_web_nodes_behind_nginx_lose_no_heartbeat_when_one_is_killed(
    make_installation, database_url, redis_cleanup, clock_shift
):
    nginx_port, nodes = free_port(), [free_port(), free_port()]
    installation = make_installation(
        DATABASE_URL=database_url,
        REDIS_URL=os.environ["REDIS_URL"],
        DJANGO_BEHIND_TLS_PROXY="true",
        ARC_PUBLIC_BASE_URL=f"https://127.0.0.1:{nginx_port}",
        ARC_HEARTBEAT_INTERVAL_SECONDS=str(INTERVAL),
        ARC_OFFLINE_AFTER_SECONDS=str(OFFLINE_AFTER),
        ARC_STATUS_SWEEP_SECONDS="5",
        DJANGO_LOG_LEVEL="WARNING",
    )
    redis_cleanup(installation)
    installation.manage("migrate", "--no-input")
    installation.manage("bootstrap")
    pki = installation.var_dir / "pki"
    prefix = make_prefix(Path(tempfile.mkdtemp(prefix="arcportal-scale-out-")))
    access_log = prefix / "arcportal-access.log"
    site = prefix / "site.conf"
    site.write_text(
        render_site(
            server_name="127.0.0.1",
            certificate=str(pki / "server.pem"),
            certificate_key=str(pki / "server-key.pem"),
            upstreams=[f"127.0.0.1:{port}" for port in nodes],
            https_listen=f"127.0.0.1:{nginx_port}",
            http_listen=f"127.0.0.1:{free_port()}",
            access_log=str(access_log),
        )
    )
    (prefix / "nginx.conf").write_text(render_standalone(site=site, prefix=prefix))

    for index, port in enumerate(nodes):
        installation.start(f"web-{index}", web_node(port))
    installation.start("nginx", [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "e")])
    installation.start("worker-1", [*WORKER, "--hostname", "worker1@%h"])
    installation.start("worker-2", [*WORKER, "--hostname", "worker2@%h"])
    installation.start("beat", BEAT)
    fleet_command = [sys.executable, "manage.py", "simulate_fleet", "--machines", str(MACHINES)]
    fleet_command += ["--onboarding-timeout", "900", "--duration", str(WINDOW), "--concurrency", "20"]
    fleet_command += ["--portal-url", f"https://127.0.0.1:{nginx_port}", "--ca-file", str(pki / "ca.pem")]
    fleet_command += ["--resource-group", "scale-out", "--name-prefix", "so", "--seed", "15"]
    fleet_command += ["--key-cache", str(KEY_CACHE)]
    try:
        for url in [f"http://127.0.0.1:{port}/healthz" for port in nodes] + [f"https://127.0.0.1:{nginx_port}/healthz"]:
            wait_until(lambda url=url: _ok(url, pki), timeout=60, message=f"{url} never answered 200")
        fleet = installation.start("fleet", fleet_command)

        # The timed window starts when the last machine has its certificate (nginx's log shows every one).
        def onboarded() -> bool:
            issued = sum(1 for row in read_log(access_log) if row[1] == 200 and row[3].endswith("/certificate"))
            assert fleet.poll() is None, installation.log("fleet")[-3000:]
            return issued >= MACHINES

        wait_until(onboarded, timeout=1800, interval=2, message="the fleet did not onboard")
        window_started = time.time()
        time.sleep(KILL_AFTER)
        victim = installation.processes["web-0"]
        os.killpg(victim.pid, signal.SIGKILL)  # the whole node at once: granian's main process and its worker
        victim.wait(timeout=10)
        killed_at = time.time()
        time.sleep(DOWN_FOR)
        installation.start("web-0-again", web_node(nodes[0]))
        restarted_at = time.time()
        assert fleet.wait(timeout=WINDOW - KILL_AFTER - DOWN_FOR + 180) == 0, installation.log("fleet")[-3000:]
        time.sleep(3)  # beat's flush (every 2 s); the state below flushes once more
        state = json.loads(installation.manage("shell", "-c", STATE).strip().splitlines()[-1])
    except AssertionError:
        raise AssertionError(installation.logs()) from None
    finally:
        installation.stop_all()
        log = read_log(access_log)
        shutil.rmtree(prefix, ignore_errors=True)
    output = installation.log("fleet")

    # 1. The simulator: everyone onboarded, every heartbeat answered; only the killed node's 502s failed.
    numbers = summary_numbers(output)
    assert (numbers["onboarded"], numbers["failures"], numbers["not_started"]) == (MACHINES, 0, 0), numbers
    assert numbers["lost"] == 0 and numbers["w_lost"] == 0, output[-2000:]
    beats = [(t, status, vm, upstream) for t, status, method, path, upstream in log if (vm := heartbeat_vm(path))]
    failed = [row for row in beats if row[1] != 200]
    assert all(status == 502 and killed_at - 5 <= t <= killed_at + 30 for t, status, _, _ in failed), failed[:20]
    assert numbers["rejected"] == len(failed), (numbers, len(failed))
    accepted = [row for row in beats if row[1] == 200]
    assert numbers["accepted"] == len(accepted), (numbers, len(accepted))  # nginx saw what the fleet counted

    # 2. nginx's log: every failure was retried and accepted; no machine went quiet for longer than allowed.
    by_machine: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, status, vm, _ in beats:
        by_machine[vm].append((t, status))
    assert len(by_machine) == MACHINES
    gaps = []
    for vm, rows in by_machine.items():
        rows.sort()
        for position, (_, status) in enumerate(rows):
            if status != 200:
                assert any(s == 200 for _, s in rows[position + 1 :]), (vm, rows)
        times = [t for t, s in rows if s == 200 and t >= window_started]
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
        assert len(times) >= WINDOW // INTERVAL - 1, (vm, rows)
    assert max(gaps) <= MAX_GAP, sorted(gaps)[-10:]
    # Both nodes served, and the restarted one served again.
    late = [upstream for t, _, _, upstream in accepted if t > restarted_at + 10]
    upstreams = {re.findall(r"127\.0\.0\.1:\d+", upstream)[-1] for upstream in late}
    assert f"127.0.0.1:{nodes[0]}" in upstreams and f"127.0.0.1:{nodes[1]}" in upstreams, upstreams

    # 3. The database: every machine Connected, recorded and derived; one status event each; its last accepted
    # heartbeat (nginx logs it once the answer is sent; the portal stamps it when the request arrives).
    last_accepted = {vm: max(t for t, s in rows if s == 200) for vm, rows in by_machine.items()}
    machines = state["machines"]
    assert len(machines) == MACHINES
    assert {m["status"] for m in machines} == {"Connected"}, [m for m in machines if m["status"] != "Connected"][:5]
    assert {m["derived"] for m in machines} == {"Connected"}
    duplicates = [m for m in machines if len(m["events"]) != 1 or m["events"][0][1] != "Connected"]
    assert not duplicates, duplicates[:5]
    off = [
        (m["vm"], m["last"] - clock_shift, last_accepted[m["vm"]])
        for m in machines
        if not (-3.0 <= last_accepted[m["vm"]] - (m["last"] - clock_shift) <= 5.0)
    ]
    assert not off, off[:5]


def _ok(url: str, pki: Path) -> bool:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=str(pki / "ca.pem")) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as answer:
            return answer.status == 200
    except OSError:
        return False
