"""``python manage.py simulate_fleet --machines N [--offline-fraction F] [--duration S] [--interval SECONDS] …``

Runs N simulated agents in this process (the ``simulator`` package): each onboards through the real protocol with
its own key and certificate and heartbeats over HTTPS. The command only prepares what an administrator would — the
resource group and a service principal with "Azure Connected Machine Onboarding" on it — shows a progress bar while
the fleet onboards and prints the counters at the end: after ``--duration`` (counted from the start, or with
``--onboarding-timeout`` from when the whole fleet has onboarded), or on Ctrl+C. See docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from arcportal.exceptions import ApplicationError
from identity.models import Role
from identity.pki import CA_FILE
from identity.selectors import tenant_get
from identity.service_principals import service_principal_create, service_principal_revoke
from machines.selectors import resource_group_get, subscription_list
from machines.services import resource_group_create
from simulator.config import FleetConfig, SimulatedMachine
from simulator.fleet import FleetSimulation
from simulator.keys import fill_key_cache, key_cache_missing
from simulator.stats import FleetStats

T = TypeVar("T")
MAX_MACHINES = 100_000
DEFAULT_RESOURCE_GROUP = "arc-simulated"


class Command(BaseCommand):
    help = "Simulate N Arc agents that onboard (keys, certificates) and heartbeat against the portal over HTTPS."

    def add_arguments(self, parser):
        parser.add_argument("--machines", type=int, required=True, help=f"Agents to simulate (1–{MAX_MACHINES:,}).")
        parser.add_argument(
            "--offline-fraction",
            type=float,
            default=0.0,
            help="Share of the machines that stop heartbeating right after onboarding (0–1, default 0).",
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=600.0,
            help="Seconds until it stops (default 600): from the start, or with --onboarding-timeout from when the "
            "whole fleet has onboarded.",
        )
        parser.add_argument(
            "--onboarding-timeout",
            type=float,
            default=None,
            help="Onboard the whole fleet first (no machine starts onboarding after this many seconds), then run "
            "--duration and count its heartbeats apart.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between heartbeats (default: what the portal answers, ARC_HEARTBEAT_INTERVAL_SECONDS).",
        )
        parser.add_argument("--portal-url", default="", help="Default: ARC_PUBLIC_BASE_URL.")
        parser.add_argument("--ca-file", default="", help="Portal CA to trust (default: ARC_PKI_DIR/ca.pem).")
        parser.add_argument("--resource-group", default=DEFAULT_RESOURCE_GROUP, help="Created if missing.")
        parser.add_argument("--location", default="westeurope", help="Location of the machines (and of a new group).")
        parser.add_argument("--concurrency", type=int, default=20, help="HTTP requests in flight at most (default 20).")
        parser.add_argument("--name-prefix", default="", help="Machine names are PREFIX-00000… (default sim-<random>).")
        parser.add_argument("--key-workers", type=int, default=None, help="Processes making RSA keys (default: CPUs).")
        parser.add_argument(
            "--key-cache",
            default="",
            help="Directory of machine keys reused across runs (key-00000.pem …); missing ones are made first.",
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed (which machines stop, OS facts).")

    def handle(self, *args, **options):
        check_options(options)
        tenant = tenant_get()
        subscription = subscription_list().first()
        if tenant is None or subscription is None:
            raise CommandError("No tenant or subscription yet: run `python manage.py bootstrap` first.")
        portal_url = (options["portal_url"] or settings.ARC_PUBLIC_BASE_URL).rstrip("/")
        ca_file = options["ca_file"] or str(Path(settings.ARC_PKI_DIR) / CA_FILE)
        if not Path(ca_file).is_file():
            raise CommandError(f"No CA file at {ca_file}: pass --ca-file, or run `python manage.py bootstrap`.")
        if options["key_cache"]:
            self.fill_keys(options["key_cache"], options["machines"], options["key_workers"])
        group = resource_group_get(subscription=subscription, name=options["resource_group"])
        try:
            if group is None:
                group = resource_group_create(
                    subscription=subscription, name=options["resource_group"], location=options["location"]
                )
                self.stdout.write(f"Created resource group {group.name}")
            created = service_principal_create(
                display_name=f"Fleet simulator ({options['machines']} machines)",
                role=Role.ONBOARDING,
                scope=group.arm_id,
                expires_at=timezone.now()
                + dt.timedelta(seconds=options["duration"] + (options["onboarding_timeout"] or 0) + 3600),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        principal = created.service_principal
        config = FleetConfig(
            portal_url=portal_url,
            ca_file=ca_file,
            tenant_id=str(tenant.tenant_id),
            subscription_id=str(subscription.subscription_id),
            resource_group=group.name,
            client_id=str(principal.client_id),
            client_secret=created.secret,
            machines=options["machines"],
            offline_fraction=options["offline_fraction"],
            duration=options["duration"],
            interval=options["interval"],
            concurrency=options["concurrency"],
            location=options["location"],
            name_prefix=options["name_prefix"],
            key_workers=options["key_workers"],
            key_dir=options["key_cache"] or None,
            onboarding_timeout=options["onboarding_timeout"],
            seed=options["seed"],
        )
        self.stdout.write(
            f"Simulating {config.machines} machines against {portal_url} in resource group {group.name} "
            f"(service principal {principal.client_id}) for at most {config.duration:g} s; Ctrl+C stops."
        )
        try:
            stats = run_with_progress(config)
        finally:
            service_principal_revoke(service_principal=principal)
        for line in stats.summary_lines():
            self.stdout.write(line)
        if stats.onboarded == 0 and stats.onboarding_failures:
            raise CommandError("No machine could onboard: " + "; ".join(map(str, stats.onboarding_failures)))

    def fill_keys(self, directory: str, machines: int, workers: int | None) -> None:
        """The keys the key cache lacks, made before anything is created on the portal."""
        missing = len(key_cache_missing(directory, machines))
        if not missing:
            return
        with tqdm(total=missing, desc="making keys", unit="key", disable=None) as progress:
            fill_key_cache(directory, machines, workers=workers, on_key=lambda index: progress.update(1))
        self.stdout.write(f"Made {missing} machine keys into {directory}")


def check_options(options) -> None:
    if not 1 <= options["machines"] <= MAX_MACHINES:
        raise CommandError(f"--machines must be between 1 and {MAX_MACHINES:,} (got {options['machines']}).")
    if not 0.0 <= options["offline_fraction"] <= 1.0:
        raise CommandError(f"--offline-fraction must be between 0 and 1 (got {options['offline_fraction']}).")
    if options["duration"] <= 0:
        raise CommandError("--duration must be a positive number of seconds.")
    if options["interval"] is not None and options["interval"] <= 0:
        raise CommandError("--interval must be a positive number of seconds.")
    if options["concurrency"] < 1:
        raise CommandError("--concurrency must be at least 1.")
    if options["key_workers"] is not None and options["key_workers"] < 0:
        raise CommandError("--key-workers must be 0 (no pool) or more.")
    if options["onboarding_timeout"] is not None and options["onboarding_timeout"] <= 0:
        raise CommandError("--onboarding-timeout must be a positive number of seconds.")
    if options["key_cache"] and Path(options["key_cache"]).exists() and not Path(options["key_cache"]).is_dir():
        raise CommandError(f"--key-cache must be a directory: {options['key_cache']} is not.")
    url = options["portal_url"] or settings.ARC_PUBLIC_BASE_URL
    if not url.startswith("https://"):
        raise CommandError(f"--portal-url must be https:// (agents talk to the portal over TLS); got {url}.")


def run_with_progress(config: FleetConfig) -> FleetStats:
    """Run the fleet with a progress bar while it onboards; the first Ctrl+C stops it gracefully."""
    progress = tqdm(total=config.machines, desc="onboarding", unit="machine", disable=None)
    failed = 0

    def onboarded(machine: SimulatedMachine) -> None:
        nonlocal failed
        if machine.failure:
            failed += 1
            progress.set_postfix(failed=failed)
        progress.update(1)
        if progress.n >= config.machines:
            progress.close()

    async def main() -> FleetStats:
        stop = asyncio.Event()
        simulation = FleetSimulation(config, on_onboarded=onboarded, stop=stop)
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            stop.set()
            loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl+C stops at once

        # Windows' event loops have no signal handlers; there Ctrl+C reaches the thread as KeyboardInterrupt.
        if threading.current_thread() is threading.main_thread() and sys.platform != "win32":
            loop.add_signal_handler(signal.SIGINT, interrupted)
        return await simulation.run()

    try:
        return run_coroutine(main)
    finally:
        progress.close()


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(factory())``; in a thread of its own when this thread already runs an event loop (a notebook,
    or a test session that drives a browser through Playwright's sync API)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulate-fleet") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
