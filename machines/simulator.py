"""A fleet of simulated Arc agents in one asyncio process, onboarding and heartbeating through the real protocol.

No Django here (``tests/machines/test_simulate_fleet.py`` checks it): the simulation talks to the portal only over
HTTPS, exactly as ``azcmagent`` does, and reuses the agent's own protocol helpers — ``azcmagent.identity`` (RSA keys,
``clientPublicKey``, the CSR, the signed heartbeat JWT, the certificate thumbprint), ``azcmagent.client`` (the ARM
API version, the machine path, the token scope, error texts), ``azcmagent.service.next_delay`` (interval jitter and
backoff) and ``azcmagent.tags.parse_tags``. What ``manage.py simulate_fleet`` and ``bench/simulator.py`` add is the
set-up (a resource group and an onboarding service principal) and the progress bar.

Each machine:

1. gets its own 2048-bit RSA key (made in a process pool: ~50 ms of CPU each),
2. signs in with the service principal's client credentials (one token for the fleet, renewed before it expires),
3. PUTs itself through ARM with ``properties.clientPublicKey``, a fresh vmId and vmUuid and simulated OS facts,
4. POSTs a CSR to ``/his/machines/{vmId}/certificate`` and keeps the certificate's thumbprint,
5. sends its first signed heartbeat (as ``azcmagent connect`` does), then — unless it is one of the
   ``offline_fraction`` that stop here and go Offline after the threshold — one every interval less up to 10% jitter,
   backing off on failures, stopping for good on 410/403.

Everything ends at ``duration`` seconds after the start (or when ``stop`` is set): no new request starts after that,
and requests in flight get ``grace`` seconds to finish, so the counters add up.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import secrets
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from azcmagent import __version__ as AGENT_VERSION
from azcmagent import identity
from azcmagent.client import ARM_API_VERSION, ARM_SCOPE, Portal, error_code, ssl_context
from azcmagent.service import BeatResult, next_delay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_RENEW_BEFORE_SECONDS = 300
DEFAULT_GRACE_SECONDS = 30.0
SIM_DOMAIN = "sim.arcportal.test"
OPERATING_SYSTEMS = (
    ("linux", "5.15.0-122-generic", "Ubuntu 22.04.5 LTS"),
    ("linux", "6.8.0-45-generic", "Ubuntu 24.04.1 LTS"),
    ("linux", "5.14.0-427.el9.x86_64", "Red Hat Enterprise Linux 9.4 (Plow)"),
    ("linux", "6.1.0-25-amd64", "Debian GNU/Linux 12 (bookworm)"),
    ("windows", "10.0.20348", "Windows Server 2022 Datacenter"),
    ("windows", "10.0.17763", "Windows Server 2019 Datacenter"),
)


# --- Configuration and results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetConfig:
    portal_url: str
    tenant_id: str
    subscription_id: str
    resource_group: str
    client_id: str
    client_secret: str
    machines: int
    ca_file: str | None = None
    offline_fraction: float = 0.0
    duration: float = 600.0
    interval: float | None = None  # None: what the portal answers (nextHeartbeatSeconds)
    concurrency: int = 20
    location: str = "westeurope"
    name_prefix: str = ""  # default: "sim-" + 6 random hex digits, so runs never collide on names
    tags: Mapping[str, str] = field(default_factory=dict)
    key_workers: int | None = None  # processes making RSA keys; 0 = in a thread of this process
    grace: float = DEFAULT_GRACE_SECONDS
    seed: int | None = None

    def validate(self) -> None:
        if self.machines < 1:
            raise ValueError("machines must be at least 1")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError("offline_fraction must be between 0 and 1")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.interval is not None and self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not self.portal_url.startswith("https://"):
            raise ValueError(f"the portal URL must be https:// (got {self.portal_url})")


@dataclass
class SimulatedMachine:
    index: int
    name: str
    stays_online: bool
    vm_id: str = ""
    vm_uuid: str = ""
    thumbprint: str = ""
    onboarded: bool = False
    onboarded_after: float = 0.0  # seconds from the start of the run until it had its certificate
    failure: str = ""
    heartbeats_sent: int = 0
    heartbeats_accepted: int = 0
    stopped_by_portal: str = ""  # "410 MachineDeleted" / "403 Expired"


@dataclass
class FleetStats:
    machines: list[SimulatedMachine]
    started_at: float = 0.0  # time.time()
    finished_at: float = 0.0
    onboarding_seconds: float = 0.0  # from the start until the last machine finished onboarding
    heartbeats_sent: int = 0
    heartbeats_accepted: int = 0
    heartbeats_rejected: Counter = field(default_factory=Counter)  # HTTP status → count
    heartbeat_errors: Counter = field(default_factory=Counter)  # no answer: exception class → count
    # (seconds since the start when it was sent, round trip in seconds) of every answered heartbeat
    heartbeat_timings: list[tuple[float, float]] = field(default_factory=list)
    onboarding_failures: Counter = field(default_factory=Counter)  # step + status/code → count
    not_started: int = 0  # machines the deadline (or a stop) came before
    interrupted: bool = False

    @property
    def onboarded(self) -> int:
        return sum(1 for m in self.machines if m.onboarded)

    @property
    def rejected(self) -> int:
        return sum(self.heartbeats_rejected.values())

    @property
    def lost(self) -> int:
        """Heartbeats sent that got no answer at all (network error, timeout, cut off at the end)."""
        return self.heartbeats_sent - self.heartbeats_accepted - self.rejected

    def summary_lines(self) -> list[str]:
        elapsed = max(0.0, self.finished_at - self.started_at)
        online = sum(1 for m in self.machines if m.onboarded and m.stays_online)
        lines = [
            f"machines: {len(self.machines)} requested, {self.onboarded} onboarded "
            f"({online} heartbeating, {self.onboarded - online} stopped after onboarding), "
            f"{sum(self.onboarding_failures.values())} onboarding failures, {self.not_started} not started",
            f"onboarding took {self.onboarding_seconds:.1f} s; ran {elapsed:.1f} s"
            + (" (interrupted)" if self.interrupted else ""),
            f"heartbeats: {self.heartbeats_sent} sent, {self.heartbeats_accepted} accepted, "
            f"{self.rejected} rejected, {self.lost} lost",
        ]
        if self.heartbeats_rejected:
            lines.append("rejected by status: " + _counts(self.heartbeats_rejected))
        if self.heartbeat_errors:
            lines.append("heartbeats without an answer: " + _counts(self.heartbeat_errors))
        if self.onboarding_failures:
            lines.append("onboarding failures: " + _counts(self.onboarding_failures))
        return lines


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counter.items(), key=lambda kv: str(kv[0])))


# --- Pure helpers ---------------------------------------------------------------------------------------------


def offline_indexes(machines: int, fraction: float, *, rng: random.Random) -> set[int]:
    """Which machines stop heartbeating after onboarding: ``round(machines × fraction)`` of them, spread at random."""
    count = min(machines, max(0, math.floor(machines * fraction + 0.5)))
    return set(rng.sample(range(machines), count))


def machine_facts(name: str, *, rng: random.Random) -> dict[str, Any]:
    """Simulated OS facts in the shape ``azcmagent.sysinfo.facts`` sends (registration and every heartbeat)."""
    os_name, os_version, os_sku = rng.choice(OPERATING_SYSTEMS)
    fqdn = f"{name}.{SIM_DOMAIN}"
    return {
        "agentVersion": AGENT_VERSION,
        "osName": os_name,
        "osType": os_name,
        "osVersion": os_version,
        "osSku": os_sku,
        "computerName": name,
        "fqdn": fqdn,
        "machineFqdn": fqdn,
        "dnsFqdn": fqdn,
        "domainName": SIM_DOMAIN,
        "detectedProperties": {
            "cloudprovider": "N/A",
            "manufacturer": "ArcPortal",
            "model": "Simulated Machine",
            "processorCount": str(rng.choice((2, 4, 8, 16))),
            "totalPhysicalMemoryInBytes": str(rng.choice((4, 8, 16, 32, 64)) * 1024**3),
            "mssqldiscovered": "false",
        },
    }


def registration_body(
    *, location: str, tags: Mapping[str, str], vm_id: str, vm_uuid: str, public_key_b64: str, facts: Mapping[str, Any]
) -> dict[str, Any]:
    """The ARM PUT body of ``azcmagent connect`` (``cli.cmd_connect``)."""
    properties = {
        "vmId": vm_id,
        "vmUuid": vm_uuid,
        "clientPublicKey": public_key_b64,
        "osProfile": {"computerName": facts["computerName"]},
        **{k: v for k, v in facts.items() if k not in ("fqdn", "computerName")},
    }
    return {"location": location, "tags": dict(tags), "identity": {"type": "SystemAssigned"}, "properties": properties}


def new_key_pem() -> bytes:
    """One machine key as PKCS#8 PEM (module level, so a process pool can run it)."""
    return identity.key_pem(identity.new_key())


def _key_worker_init() -> None:
    """Ctrl+C goes to the whole process group: the command stops the fleet, so key workers ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def load_own_key(pem: bytes) -> rsa.RSAPrivateKey:
    """A key ``new_key_pem`` just made. ``identity.load_key`` re-validates the RSA key (~70 ms of CPU, which would
    block the event loop once per machine); a key we generated ourselves needs no check."""
    key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA key")
    return key


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- The simulation -------------------------------------------------------------------------------------------


class _TokenSource:
    """The service principal's ARM token, shared by the fleet and renewed ``TOKEN_RENEW_BEFORE_SECONDS`` early.

    One sign-in per token rather than per machine: a service principal secret is a PBKDF2 hash on the portal, and
    10,000 sign-ins would measure the hasher, not the fleet. The token is the same principal either way, so the
    portal's checks (onboard permission, "only the principal that registered it fetches the certificate") hold.
    """

    def __init__(self, client: httpx.AsyncClient, config: FleetConfig) -> None:
        self.client, self.config = client, config
        self.token = ""
        self.expires = 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> str:
        async with self.lock:
            if self.token and time.monotonic() < self.expires - TOKEN_RENEW_BEFORE_SECONDS:
                return self.token
            response = await self.client.post(
                f"/{self.config.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                    "scope": ARM_SCOPE,
                },
            )
            body = _answer(response)
            if response.status_code != 200 or not body.get("access_token"):
                raise OnboardingFailed(f"token {response.status_code} {body.get('error', '')}".strip())
            self.token = str(body["access_token"])
            self.expires = time.monotonic() + float(body.get("expires_in") or 3599)
            return self.token


class OnboardingFailed(Exception):
    """One machine could not onboard; the message is the failure's key in ``FleetStats.onboarding_failures``."""


class FleetSimulation:
    def __init__(
        self,
        config: FleetConfig,
        *,
        on_onboarded: Callable[[SimulatedMachine], None] | None = None,
        stop: asyncio.Event | None = None,
        key_executor: Executor | None = None,
    ) -> None:
        config.validate()
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
        self.stop = stop or asyncio.Event()
        self.key_executor = key_executor
        self.deadline = 0.0
        self._started = 0.0
        self._own_executor: ProcessPoolExecutor | None = None
        self._to_onboard = config.machines  # the key pool is shut down when this reaches 0
        self._requests = asyncio.Semaphore(config.concurrency)  # HTTP requests in flight
        self._onboarding = asyncio.Semaphore(config.concurrency)  # machines between key and certificate

    # -- time ----------------------------------------------------------------------------------------------------

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped or past the deadline first; True if the machine should go on."""
        seconds = min(seconds, self._remaining())
        if seconds <= 0 or self.stop.is_set():
            return False
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return self._remaining() > 0
        return False

    def _may_start(self) -> bool:
        return not self.stop.is_set() and self._remaining() > 0

    # -- one machine ---------------------------------------------------------------------------------------------

    async def _onboard(self, client: httpx.AsyncClient, tokens: _TokenSource, machine: SimulatedMachine, key_pem):
        key = load_own_key(await key_pem)
        if not self._may_start():
            self.stats.not_started += 1
            return None
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

    async def _beat(self, client: httpx.AsyncClient, machine: SimulatedMachine, key, body: bytes) -> BeatResult:
        token = identity.heartbeat_token(key, thumbprint=machine.thumbprint, vm_id=machine.vm_id, body=body)
        async with self._requests:
            self.stats.heartbeats_sent += 1
            machine.heartbeats_sent += 1
            started = time.monotonic()
            try:
                response = await client.post(
                    f"/his/machines/{machine.vm_id}/heartbeat",
                    content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                self.stats.heartbeat_errors[type(exc).__name__] += 1
                return BeatResult(False, 0, False, self._interval(None), str(exc))
            self.stats.heartbeat_timings.append((started - self._started, time.monotonic() - started))
        answer = _answer(response)
        if response.status_code == 200:
            self.stats.heartbeats_accepted += 1
            machine.heartbeats_accepted += 1
            return BeatResult(True, 200, False, self._interval(answer.get("nextHeartbeatSeconds")), "Connected")
        self.stats.heartbeats_rejected[response.status_code] += 1
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

    async def _run_machine(self, client, tokens, machine: SimulatedMachine, executor: Executor | None) -> None:
        onboarded = None
        async with self._onboarding:
            if not self._may_start():
                self.stats.not_started += 1
                self._onboarding_done()
                return
            # The key is made when the machine's turn comes, so key making and onboarding share the CPUs evenly.
            key_pem = asyncio.get_running_loop().run_in_executor(executor, new_key_pem)
            try:
                onboarded = await self._onboard(client, tokens, machine, key_pem)
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
            result = await self._beat(client, machine, key, body)
            if result.stop or not machine.stays_online:
                return
            failures = 0 if result.ok else failures + 1
            if not await self._sleep(next_delay(result, failures=failures)):
                return

    def _onboarding_done(self) -> None:
        self._to_onboard -= 1
        if self._to_onboard == 0 and self._own_executor is not None:
            self._own_executor.shutdown(wait=False)  # no more keys to make: free the worker processes

    # -- the fleet -----------------------------------------------------------------------------------------------

    async def run(self) -> FleetStats:
        config = self.config
        self.stats.started_at = time.time()
        self._started = time.monotonic()
        self.deadline = self._started + config.duration
        own_executor = None
        executor = self.key_executor
        if executor is None and config.key_workers != 0:
            own_executor = executor = ProcessPoolExecutor(
                max_workers=config.key_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_key_worker_init,
            )
        self._own_executor = own_executor
        limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
        timeout = httpx.Timeout(30.0, connect=10.0, pool=None)
        try:
            async with httpx.AsyncClient(
                base_url=config.portal_url.rstrip("/"),
                verify=ssl_context(config.ca_file),
                limits=limits,
                timeout=timeout,
                headers={"User-Agent": "azcmagent (ArcPortal fleet simulator)"},
            ) as client:
                tokens = _TokenSource(client, config)
                tasks = [
                    asyncio.ensure_future(self._run_machine(client, tokens, machine, executor))
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
            await asyncio.wait(
                {everything, stopped}, timeout=max(0.0, self._remaining()), return_when="FIRST_COMPLETED"
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
