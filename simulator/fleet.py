"""A fleet of simulated Arc agents in one asyncio process, onboarding and heartbeating through the real protocol.

No Django here (``tests/simulator/test_simulate_fleet.py`` checks it): the simulation talks to the portal only over
HTTPS, exactly as ``azcmagent`` does, and reuses the agent's own protocol helpers — ``azcmagent.identity`` (RSA keys,
``clientPublicKey``, the CSR, the signed heartbeat JWT, the certificate thumbprint), ``azcmagent.client`` (the ARM
API version, the machine path, the token scope, error texts), ``azcmagent.service.next_delay`` (interval jitter and
backoff) and ``azcmagent.tags.parse_tags``. What ``manage.py simulate_fleet`` and ``bench/simulator.py`` add is the
set-up (a resource group and an onboarding service principal) and the progress bar.

Each machine:

1. gets its own 2048-bit RSA key (made in a process pool: ~50 ms of CPU each), or its own key from a key cache
   (``key_dir``: ``fill_key_cache`` made the PEM files beforehand, one per machine index),
2. signs in with the service principal's client credentials (one token for the fleet, renewed before it expires),
3. PUTs itself through ARM with ``properties.clientPublicKey``, a fresh vmId and vmUuid and simulated OS facts,
4. POSTs a CSR to ``/his/machines/{vmId}/certificate`` and keeps the certificate's thumbprint,
5. sends its first signed heartbeat (as ``azcmagent connect`` does), then — unless it is one of the
   ``offline_fraction`` that stop here and go Offline after the threshold — one every interval less up to 10% jitter,
   backing off on failures, stopping for good on 410/403.

Everything ends at ``duration`` seconds after the start (or when ``stop`` is set): no new request starts after that,
and requests in flight get ``grace`` seconds to finish, so the counters add up. With ``onboarding_timeout`` the fleet
onboards first (no machine starts onboarding later than that many seconds after the start; onboarded machines
heartbeat meanwhile, as real agents do) and the ``duration`` window starts when the last machine has finished
onboarding; ``FleetStats.window`` counts that window's heartbeats on their own.

The package: ``config`` (what to simulate), ``keys``, ``transport`` (heartbeats over asyncio streams), ``stats``
(the counters), and this module, the simulation itself.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor

import httpx
from azcmagent import identity
from azcmagent.client import ARM_API_VERSION, Portal, error_code, ssl_context
from azcmagent.service import BeatResult, next_delay
from cryptography.hazmat.primitives.asymmetric import rsa

from simulator.config import (
    USER_AGENT,
    FleetConfig,
    SimulatedMachine,
    machine_facts,
    offline_indexes,
    registration_body,
)
from simulator.keys import (
    _key_worker_init,
    key_cache_missing,
    key_cache_path,
    load_cached_key,
    load_own_key,
    new_key_pem,
)
from simulator.stats import FleetStats, HeartbeatCounters
from simulator.tokens import OnboardingFailed, TokenSource
from simulator.transport import HEARTBEAT_ERRORS, HeartbeatSender, _answer, skip_failing_sniffio_import


class FleetSimulation:
    def __init__(
        self,
        config: FleetConfig,
        *,
        on_onboarded: Callable[[SimulatedMachine], None] | None = None,
        on_window_start: Callable[[], None] | None = None,
        stop: asyncio.Event | None = None,
        key_executor: Executor | None = None,
    ) -> None:
        config.validate()
        if config.key_dir is not None:
            missing = key_cache_missing(config.key_dir, config.machines)
            if missing:
                raise ValueError(
                    f"the key cache {config.key_dir} lacks {len(missing)} of the {config.machines} keys "
                    f"(first: {key_cache_path(config.key_dir, missing[0]).name}): fill it first (fill_key_cache)"
                )
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - which machines stop, simulated facts: not secrets
        prefix = config.name_prefix or f"sim-{secrets.token_hex(3)}"
        offline = offline_indexes(config.machines, config.offline_fraction, rng=self.rng)
        self.stats = FleetStats(
            machines=[
                SimulatedMachine(index=i, name=f"{prefix}-{i:05d}", stays_online=i not in offline)
                for i in range(config.machines)
            ]
        )
        self._facts = [machine_facts(m.name, rng=self.rng) for m in self.stats.machines]
        self.on_onboarded = on_onboarded
        self.on_window_start = on_window_start
        self.stop = stop or asyncio.Event()
        self.key_executor = key_executor
        self.deadline = 0.0  # no request starts after it; moved to the window's end once the fleet has onboarded
        self.onboarding_deadline = 0.0  # no machine starts onboarding after it
        self._window_start: float | None = None  # time.monotonic() when the timed window started
        self._public_keys: set[int] = set()  # moduli of the keys in use: each machine's own
        self._started = 0.0
        self._own_executor: ProcessPoolExecutor | None = None
        self._to_onboard = config.machines  # the key pool is shut down when this reaches 0
        self._requests = asyncio.Semaphore(config.concurrency)  # HTTP requests in flight
        self._onboarding = asyncio.Semaphore(config.concurrency)  # machines between key and certificate
        if config.onboarding_timeout is not None:
            self.stats.window = HeartbeatCounters()

    # -- time ----------------------------------------------------------------------------------------------------

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped or past the deadline first; True if the machine should go on. The deadline may move
        while it sleeps (the timed window starts), so a wake-up at the old one sleeps on to the end."""
        end = time.monotonic() + seconds
        while True:
            if self.stop.is_set() or self._remaining() <= 0:
                return False
            wait = min(end, self.deadline) - time.monotonic()
            if wait <= 0:
                return True
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=wait)
            except TimeoutError:
                continue
            return False

    def _may_start(self) -> bool:
        return not self.stop.is_set() and self._remaining() > 0

    def _may_start_onboarding(self) -> bool:
        return self._may_start() and time.monotonic() < self.onboarding_deadline

    # -- one machine ---------------------------------------------------------------------------------------------

    def _cached_key(self, index: int) -> rsa.RSAPrivateKey:
        try:
            return load_cached_key(self.config.key_dir, index)
        except (OSError, ValueError, TypeError) as exc:
            raise OnboardingFailed(f"key cache {type(exc).__name__}") from exc

    async def _onboard(self, client: httpx.AsyncClient, tokens: TokenSource, machine: SimulatedMachine, key):
        """``key``: the machine's key, or a future of a new key's PEM (from the key pool)."""
        if isinstance(key, asyncio.Future):
            key = load_own_key(await key)
        if not self._may_start_onboarding():
            self.stats.not_started += 1
            return None
        modulus = key.public_key().public_numbers().n
        if modulus in self._public_keys:
            raise OnboardingFailed("key already used by another machine")
        self._public_keys.add(modulus)
        facts = self._facts[machine.index]
        machine.vm_id = str(uuid.uuid4())
        machine.vm_uuid = str(uuid.uuid4()).upper()
        async with self._requests:
            token = await tokens.get()
            body = registration_body(
                location=self.config.location,
                tags=self.config.tags,
                vm_id=machine.vm_id,
                vm_uuid=machine.vm_uuid,
                public_key_b64=identity.public_key_b64(key),
                facts=facts,
            )
            response = await client.put(
                Portal.machine_path(self.config.subscription_id, self.config.resource_group, machine.name),
                params={"api-version": ARM_API_VERSION},
                headers={"Authorization": f"Bearer {token}", "x-ms-correlation-request-id": str(uuid.uuid4())},
                json=body,
            )
            if response.status_code not in (200, 201):
                raise OnboardingFailed(f"PUT {response.status_code} {error_code(_answer(response))}".strip())
            response = await client.post(
                f"/his/machines/{machine.vm_id}/certificate",
                headers={"Authorization": f"Bearer {token}"},
                json={"csr": identity.csr_pem(key, vm_id=machine.vm_id)},
            )
            answer = _answer(response)
            if response.status_code != 200 or "certificate" not in answer:
                raise OnboardingFailed(f"certificate {response.status_code} {error_code(answer)}".strip())
        machine.thumbprint = identity.certificate_thumbprint(str(answer["certificate"]).encode())
        machine.onboarded = True
        machine.onboarded_after = time.monotonic() - self._started
        return key, json.dumps(facts, sort_keys=True).encode()

    async def _beat(self, sender: HeartbeatSender, machine: SimulatedMachine, key, body: bytes) -> BeatResult:
        token = identity.heartbeat_token(key, thumbprint=machine.thumbprint, vm_id=machine.vm_id, body=body)
        ready = time.monotonic()
        async with self._requests:
            self.stats.heartbeats_sent += 1
            machine.heartbeats_sent += 1
            started = time.monotonic()
            # Counted in the timed window if sent in it (one in flight as the window starts belongs to onboarding).
            window = self.stats.window if self._window_start is not None else None
            if window is not None:
                window.sent += 1
                window.slot_waits.append(started - ready)
            try:
                response = await sender.post(
                    f"/his/machines/{machine.vm_id}/heartbeat",
                    body,
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
            except HEARTBEAT_ERRORS as exc:
                self.stats.heartbeat_errors[type(exc).__name__] += 1
                if window is not None:
                    window.errors[type(exc).__name__] += 1
                return BeatResult(False, 0, False, self._interval(None), str(exc))
            round_trip = time.monotonic() - started
            self.stats.heartbeat_timings.append((started - self._started, round_trip))
            if window is not None:
                window.round_trips.append(round_trip)
        answer = _answer(response)
        if response.status_code == 200:
            self.stats.heartbeats_accepted += 1
            machine.heartbeats_accepted += 1
            if window is not None:
                window.accepted += 1
                machine.window_heartbeats_accepted += 1
            return BeatResult(True, 200, False, self._interval(answer.get("nextHeartbeatSeconds")), "Connected")
        self.stats.heartbeats_rejected[response.status_code] += 1
        if window is not None:
            window.rejected[response.status_code] += 1
        code = error_code(answer)
        stop = response.status_code in (403, 410)
        if stop:
            machine.stopped_by_portal = f"{response.status_code} {code}".strip()
        return BeatResult(False, response.status_code, stop, self._interval(None), code)

    def _interval(self, answered) -> float:
        """``--interval`` if given, else the portal's ``nextHeartbeatSeconds`` (``next_delay`` scales either)."""
        if self.config.interval is not None:
            return self.config.interval
        try:
            return max(1, int(answered))
        except (TypeError, ValueError):
            return 300

    async def _run_machine(
        self, client, sender: HeartbeatSender, tokens, machine: SimulatedMachine, executor: Executor | None
    ) -> None:
        onboarded = None
        async with self._onboarding:
            if not self._may_start_onboarding():
                self.stats.not_started += 1
                self._onboarding_done()
                return
            try:
                if self.config.key_dir is not None:
                    key = self._cached_key(machine.index)
                else:
                    # Made when the machine's turn comes, so key making and onboarding share the CPUs evenly.
                    key = asyncio.get_running_loop().run_in_executor(executor, new_key_pem)
                onboarded = await self._onboard(client, tokens, machine, key)
            except OnboardingFailed as exc:
                machine.failure = str(exc)
            except httpx.HTTPError as exc:
                machine.failure = f"network {type(exc).__name__}"
            finally:
                self._onboarding_done()
        if machine.failure:
            self.stats.onboarding_failures[machine.failure] += 1
        if self.on_onboarded is not None and (machine.onboarded or machine.failure):
            self.on_onboarded(machine)
        if onboarded is None:
            return
        self.stats.onboarding_seconds = max(self.stats.onboarding_seconds, time.time() - self.stats.started_at)
        key, body = onboarded
        failures = 0
        while self._may_start():
            result = await self._beat(sender, machine, key, body)
            if result.stop or not machine.stays_online:
                return
            failures = 0 if result.ok else failures + 1
            if not await self._sleep(next_delay(result, failures=failures)):
                return

    def _onboarding_done(self) -> None:
        self._to_onboard -= 1
        if self._to_onboard:
            return
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=False)  # no more keys to make: free the worker processes
        if self.config.onboarding_timeout is not None and self._may_start():
            self._start_window()

    def _start_window(self) -> None:
        """Every machine is done onboarding (or failed, or was too late to start): the timed window starts now."""
        self._window_start = time.monotonic()
        self.stats.window_started_at = time.time()
        self.deadline = self._window_start + self.config.duration
        if self.on_window_start is not None:
            self.on_window_start()

    # -- the fleet -----------------------------------------------------------------------------------------------

    async def run(self) -> FleetStats:
        config = self.config
        skip_failing_sniffio_import()
        self.stats.started_at = time.time()
        self._started = time.monotonic()
        if config.onboarding_timeout is None:
            self.deadline = self.onboarding_deadline = self._started + config.duration
        else:
            # The latest the window can end; _start_window moves it to duration after the fleet has onboarded.
            self.onboarding_deadline = self._started + config.onboarding_timeout
            self.deadline = self.onboarding_deadline + config.duration
        own_executor = None
        executor = self.key_executor
        if executor is None and config.key_workers != 0 and config.key_dir is None:
            own_executor = executor = ProcessPoolExecutor(
                max_workers=config.key_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_key_worker_init,
            )
        self._own_executor = own_executor
        limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
        timeout = httpx.Timeout(30.0, connect=10.0, pool=None)
        verify = ssl_context(config.ca_file)
        sender = HeartbeatSender(config.portal_url, verify, timeout=30.0, user_agent=USER_AGENT)
        try:
            async with httpx.AsyncClient(
                base_url=config.portal_url.rstrip("/"),
                verify=verify,
                limits=limits,
                timeout=timeout,
                headers={"User-Agent": USER_AGENT},
            ) as client:
                tokens = TokenSource(client, config)
                tasks = [
                    asyncio.ensure_future(self._run_machine(client, sender, tokens, machine, executor))
                    for machine in self.stats.machines
                ]
                await self._wait(tasks)
        finally:
            if own_executor is not None:
                own_executor.shutdown(wait=False, cancel_futures=True)
            self.stats.finished_at = time.time()
        return self.stats

    async def _wait(self, tasks: list[asyncio.Future]) -> None:
        """Until every machine is done, or the deadline/stop plus ``grace`` for requests in flight."""
        everything = asyncio.gather(*tasks, return_exceptions=True)
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            # The deadline moves when the timed window starts: look again at least every second.
            while not everything.done() and not self.stop.is_set() and self._remaining() > 0:
                await asyncio.wait(
                    {everything, stopped}, timeout=min(1.0, self._remaining()), return_when="FIRST_COMPLETED"
                )
            if self.stop.is_set() and self._remaining() > 0:
                self.stats.interrupted = True  # stopped from outside (Ctrl+C) before the deadline
            if not everything.done():
                self.stop.set()  # the deadline: wake every sleeping machine
                await asyncio.wait({everything}, timeout=self.config.grace)
            if not everything.done():
                everything.cancel()  # requests still in flight after the grace period count as lost
                await asyncio.gather(everything, return_exceptions=True)
        finally:
            stopped.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # a bug in the simulator, not a portal answer: surface it


async def simulate_fleet(config: FleetConfig, **kwargs) -> FleetStats:
    """Run the fleet until every machine is done or ``config.duration`` has passed; returns the counters."""
    return await FleetSimulation(config, **kwargs).run()
