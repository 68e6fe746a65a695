"""Fleet capacity through the production tier (issue 15 item 4): how many machines at the default 5-minute interval one
box serves with heartbeat p99 < 1 s and none lost, the simulator on the same box.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432 REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/fleet_capacity.py --machines 50000 [--interval 300] [--minutes 10] \\
        [--key-cache var/bench-keys] [--web-nodes 1] [--web-workers 2] [--web-threads 4] [--write-docs]

``--machines 10000,25000,50000`` runs a ladder: each size on a fresh database, in turn, stopping after the first
size that misses the goal, so the ceiling lies between the last size met and that one.

For each size: a throwaway portal (PostgreSQL database ``--database``, made and dropped here; Redis as cache,
heartbeat buffer and Celery broker; a temporary ARC_VAR_DIR) served as ``deploy/`` serves it in production — nginx
(TLS, the site of ``deploy/nginx/arcportal.conf``) in front of ``--web-nodes`` granian nodes (the command of
``deploy/systemd/arcportal-web@.service``), one Celery worker and beat — and the fleet simulator as its command line
runs it (``manage.py simulate_fleet``, docs/simulator.md) against nginx: every machine onboards (its own key from the
key cache, its own certificate), heartbeats meanwhile, and once the whole fleet has onboarded the timed window of
``--minutes`` starts. Goal, in the window: 0 rejected, 0 lost, heartbeat round trip p99 < 1 s, and the simulator's
own queue for a request slot p99 < 1 s (else the latency would hide in the client).

CPU is counted from ``/proc`` in the window, apart: the portal (nginx, web nodes, worker, beat, the database's
PostgreSQL backends, Redis) and the simulator. Figures are printed, never asserted; ``--write-docs`` writes them
into docs/performance.md. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness.serving import (
    ROOT,
    CpuMeter,
    Portal,
    box_busy,
    free_port,
    process_cpu,
    server_command,
    start,
    start_nginx,
    stop,
    wait_listening,
)

GOAL_MS = 1000.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", default="50000", help="a size, or a ladder: 10000,25000,50000")
    parser.add_argument("--interval", type=int, default=300, help="heartbeat interval in seconds (default 300)")
    parser.add_argument("--minutes", type=float, default=10.0, help="the timed window (default 10)")
    parser.add_argument("--onboarding-minutes", type=float, default=240.0)
    parser.add_argument("--database", default="arcportal_bench_fleet", help="throwaway database name")
    parser.add_argument("--key-cache", type=Path, default=ROOT / "var" / "bench-keys")
    parser.add_argument("--web-nodes", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=2, help="granian processes per node (default 2)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per process (default 4)")
    parser.add_argument("--concurrency", type=int, default=256, help="the simulator's requests in flight at most")
    parser.add_argument(
        "--database-machines",
        type=int,
        default=0,
        help="fill the database up to this many machines (the rest seeded set-wise, in their own group, with the "
        "blade bench's mix of statuses and two tags each, never heartbeating): a short interval then has the rate "
        "of a big fleet with the table of one (the run must end within the Offline threshold, 25 minutes)",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    args.sizes = [int(x) for x in args.machines.split(",") if x.strip()]
    if not args.sizes or min(args.sizes) < 1 or args.interval < 1 or args.minutes <= 0:
        parser.error("sizes, interval and minutes must be positive")
    return args


class Installation:
    """The production tier of one run and its CPU meter."""

    def __init__(self, portal: Portal, args, size: int) -> None:
        self.portal, self.args, self.size = portal, args, size
        self.processes: list[subprocess.Popen] = []
        self.logs = portal.tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.port = free_port()

    def env(self) -> dict[str, str]:
        return self.portal.env(
            DJANGO_BEHIND_TLS_PROXY="true",
            ARC_PUBLIC_BASE_URL=f"https://127.0.0.1:{self.port}",
            ARC_HEARTBEAT_INTERVAL_SECONDS=str(self.args.interval),
            ARC_OFFLINE_AFTER_SECONDS=str(max(1500, 3 * self.args.interval)),
            ARC_CELERY_QUEUE=f"bench-fleet-{uuid.uuid4().hex[:8]}",
        )

    def start(self) -> None:
        env = self.env()
        nodes = [free_port() for _ in range(self.args.web_nodes)]
        for index, node in enumerate(nodes):
            command = server_command(
                "granian-wsgi",
                bind=f"127.0.0.1:{node}",
                workers=self.args.web_workers,
                threads=self.args.web_threads,
                tls=None,
            )
            process = start(f"web-{index}", command, env=env, logs=self.logs)
            self.processes.append(process)
            wait_listening(node, process)
        self.processes.append(
            start_nginx(
                prefix=self.logs / "nginx",
                https_port=self.port,
                upstreams=[f"127.0.0.1:{node}" for node in nodes],
                tls=self.portal.tls_files,
                workers="auto",
            )
        )
        celery = [sys.executable, "-m", "celery", "-A", "arcportal"]
        worker = [*celery, "worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-mingle"]
        self.processes.append(start("worker", [*worker, "--without-gossip"], env=env, logs=self.logs))
        self.processes.append(start("beat", [*celery, "beat", "--loglevel", "WARNING"], env=env, logs=self.logs))

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)

    def certificates_issued(self) -> int:
        log = self.logs / "nginx" / "arcportal-access.log"
        if not log.exists():
            return 0
        return sum(1 for line in log.open() if " 200 POST /his/machines/" in line and "/certificate " in line)

    def cpu(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far by process id: the portal's processes, PostgreSQL's backends of the database, Redis
        (all of it). Compared with ``CpuMeter.spent``: a process born meanwhile counts from 0."""
        import redis

        info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("cpu")
        return {
            "web + nginx + celery": CpuMeter([p.pid for p in self.processes]).sample(),
            "postgres": {pid: process_cpu(pid) for pid in self.portal.backends()},
            "redis": {0: float(info["used_cpu_user"]) + float(info["used_cpu_sys"])},
        }


PAD = """
import sys
sys.path.insert(0, "bench")
from django.utils import timezone
from identity.services import tenant_ensure
from list_page import seed_postgresql
from machines.models import ResourceGroup
from machines.services import subscription_ensure_default
group = ResourceGroup.objects.create(
    subscription=subscription_ensure_default(tenant=tenant_ensure()), name="bench-padding", location="westeurope"
)
seed_postgresql({count}, [group.pk], timezone.now())
"""


def pad_database(portal: Portal, count: int) -> None:
    """``count`` machines more in the database (``bench/list_page.py``'s set-wise seed), before the fleet starts."""
    started = time.time()
    portal.manage("shell", "-c", PAD.format(count=int(count)))
    print(f"  the database holds {count:,} machines more (seeded in {time.time() - started:.0f} s)", flush=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_size(args, size: int) -> dict:
    portal = Portal(args.database)
    portal.create()
    installation = None
    fleet = None
    try:
        portal.manage("migrate", "--no-input", "--verbosity", "0")
        portal.manage("bootstrap")
        if args.database_machines > size:
            pad_database(portal, args.database_machines - size)
        installation = Installation(portal, args, size)
        installation.start()
        command = [sys.executable, "manage.py", "simulate_fleet", "--machines", str(size)]
        command += ["--onboarding-timeout", str(args.onboarding_minutes * 60), "--duration", str(args.minutes * 60)]
        command += ["--portal-url", f"https://127.0.0.1:{installation.port}", "--ca-file", str(portal.pki / "ca.pem")]
        command += ["--key-cache", str(args.key_cache), "--concurrency", str(args.concurrency)]
        command += ["--resource-group", "bench-fleet", "--name-prefix", "cap", "--seed", "42"]
        reaped_before = children_cpu()
        fleet = start("fleet", command, env=installation.env(), logs=installation.logs)
        started = time.time()
        print(f"{size:,} machines: the fleet onboards (keys from {args.key_cache}) …", flush=True)
        next_line = started + 60
        while installation.certificates_issued() < size and fleet.poll() is None:
            time.sleep(2)
            if time.time() >= next_line:
                next_line += 60
                print(f"  {time.time() - started:5.0f} s: {installation.certificates_issued():,} onboarded", flush=True)
        onboarding = time.time() - started
        fleet_so_far = sum(CpuMeter([fleet.pid]).sample().values())
        before = (time.time(), installation.cpu(), box_busy())
        print(f"  onboarded in {onboarding:.0f} s; the {args.minutes:g}-minute window starts", flush=True)
        fleet.wait(timeout=args.minutes * 60 + 600)
        after = (time.time(), installation.cpu(), box_busy())
        simulator_cpu = children_cpu() - reaped_before - fleet_so_far  # the fleet and its key pool, reaped
        output = (installation.logs / "fleet.log").read_text(errors="replace")
        return report(args, size, output, before, after, simulator_cpu, onboarding)
    finally:
        if fleet is not None:
            stop(fleet)
        if installation is not None:
            installation.stop()
        portal.drop()


WINDOW = re.compile(r"timed window \((.*?) s after.*?\): (\d+) sent, (\d+) accepted, (\d+) rejected, (\d+) lost")
TRIPS = re.compile(r"timed window round trips: p50 ([\d.]+) ms, p95 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms")
WAITS = re.compile(r"waits for a request slot before that: p50 ([\d.]+) ms, p95 ([\d.]+) ms, p99 ([\d.]+) ms")


def report(args, size, output, before, after, simulator_cpu, onboarding) -> dict:
    window, trips, waits = WINDOW.search(output), TRIPS.search(output), WAITS.search(output)
    seconds = after[0] - before[0]
    portal_cpu = {name: CpuMeter.spent(before[1][name], after[1][name]) for name in after[1]}
    busy = (after[2][0] - before[2][0]) / max(1, after[2][1] - before[2][1])
    result = {"size": size, "onboarding": onboarding, "seconds": seconds, "busy": busy, "load": os.getloadavg()}
    if not (window and trips and waits):
        print(output[-3000:])
        result["met"] = False
        return result
    sent, accepted, rejected, lost = (int(x) for x in window.groups()[1:])
    p99, wait_p99 = float(trips.group(3)), float(waits.group(3))
    met = rejected == 0 and lost == 0 and p99 < GOAL_MS and wait_p99 < GOAL_MS and accepted > 0
    result.update(
        sent=sent,
        accepted=accepted,
        rejected=rejected,
        lost=lost,
        trips=[float(x) for x in trips.groups()],
        waits=[float(x) for x in waits.groups()],
        rate=sent / seconds,
        portal_cpu=portal_cpu,
        simulator_cpu=simulator_cpu,
        met=met,
    )
    per_beat = {name: cpu * 1000 / max(accepted, 1) for name, cpu in portal_cpu.items()}
    print(
        f"{size:,} machines at {args.interval} s: window {seconds:.0f} s, {sent:,} heartbeats sent "
        f"({sent / seconds:.1f}/s), {accepted:,} accepted, {rejected} rejected, {lost} lost; "
        f"round trip p50/p95/p99/max "
        f"{' / '.join(f'{x:,.0f}' for x in result['trips'])} ms; slot wait p50/p95/p99 "
        f"{' / '.join(f'{x:,.0f}' for x in result['waits'])} ms"
    )
    print(
        "  portal CPU per heartbeat: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_beat.items())
        + f"; portal {sum(portal_cpu.values()) / seconds:.2f} CPUs, simulator {simulator_cpu / seconds:.2f} CPUs "
        f"({simulator_cpu * 1000 / max(sent, 1):.2f} ms per heartbeat), box {busy * 100:.0f}% busy"
    )
    print(f"  goal (0 rejected, 0 lost, p99 < 1 s, slot wait p99 < 1 s): {'met' if met else 'NOT met'}")
    return result


def main() -> None:
    args = parse_args()
    results = []
    load_start = os.getloadavg()
    for size in args.sizes:
        result = run_size(args, size)
        results.append(result)
        if not result["met"]:
            break
    met = [r["size"] for r in results if r["met"]]
    missed = [r["size"] for r in results if not r["met"]]
    verdict = (f"largest size met: {max(met):,}" if met else "no size met the goal") + (
        f"; first size missed: {missed[0]:,}" if missed else "; no size missed (raise the ladder)"
    )
    print(verdict)
    facts = (
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, load average at the start "
        f"{' / '.join(f'{x:.1f}' for x in load_start)}; {args.web_nodes} web node(s) × {args.web_workers} granian "
        f"processes × {args.web_threads} threads behind nginx, 1 Celery worker + beat, simulator concurrency "
        f"{args.concurrency}"
    )
    print(facts)
    if args.write_docs:
        write_docs(args, results, verdict, facts)


DOCS_BEGIN = "<!-- generated by bench/fleet_capacity.py --write-docs: begin -->"
DOCS_END = "<!-- generated by bench/fleet_capacity.py --write-docs: end -->"


def write_docs(args, results, verdict, facts) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        DOCS_BEGIN,
        "",
        f"Run of {stamp}, commit {commit.stdout.strip()}: heartbeat every {args.interval} s, a "
        f"{args.minutes:g}-minute window after the fleet had onboarded"
        + (f", the database holding {args.database_machines:,} machines" if args.database_machines else "")
        + f". {verdict[:1].upper()}{verdict[1:]}.",
        "",
        "| machines | heartbeats/s | sent / accepted / rejected / lost | round trip p50 / p99 / max | slot wait p99 "
        "| portal CPUs (ms per heartbeat) | simulator CPUs | box busy | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "trips" not in r:
            lines.append(f"| {r['size']:,} | – | the run did not finish (see its output) | | | | | | NOT met |")
            continue
        portal = sum(r["portal_cpu"].values())
        lines.append(
            f"| {r['size']:,} | {r['rate']:.1f} | {r['sent']:,} / {r['accepted']:,} / {r['rejected']} / {r['lost']} | "
            f"{r['trips'][0]:,.0f} / {r['trips'][2]:,.0f} / {r['trips'][3]:,.0f} ms | {r['waits'][2]:,.0f} ms | "
            f"{portal / r['seconds']:.2f} ({portal * 1000 / max(r['accepted'], 1):.2f}) | "
            f"{r['simulator_cpu'] / r['seconds']:.2f} | {r['busy'] * 100:.0f}% | {'met' if r['met'] else 'NOT met'} |"
        )
    lines += ["", f"Machine: {facts}.", "", DOCS_END]
    path = ROOT / "docs" / "performance.md"
    text = path.read_text()
    block = "\n".join(lines)
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote the figures into {path}")


if __name__ == "__main__":
    main()
