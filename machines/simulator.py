"""A fleet of simulated Arc agents in one asyncio process, onboarding and heartbeating through the real protocol.

No Django here (``tests/machines/test_simulate_fleet.py`` checks it): the simulation talks to the portal only over
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
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import random
import secrets
import signal
import ssl
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
USER_AGENT = "azcmagent (ArcPortal fleet simulator)"
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
    key_dir: str | None = None  # a key cache (fill_key_cache): machine i uses its key-i.pem instead of a new key
    # None: ``duration`` counts from the start, onboarding included. A number: onboard the fleet first (no machine
    # starts onboarding later than this many seconds after the start), then run the ``duration`` window.
    onboarding_timeout: float | None = None
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
        if self.onboarding_timeout is not None and self.onboarding_timeout <= 0:
            raise ValueError("onboarding_timeout must be positive")
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
    window_heartbeats_accepted: int = 0  # of those, sent in the timed window (``onboarding_timeout``)
    stopped_by_portal: str = ""  # "410 MachineDeleted" / "403 Expired"


@dataclass
class HeartbeatCounters:
    """The heartbeats sent in one part of a run (``FleetStats.window``): each counted where it was sent."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # HTTP status → count
    errors: Counter = field(default_factory=Counter)  # no answer: exception class → count
    round_trips: list[float] = field(default_factory=list)  # seconds on the wire, of every answered heartbeat
    # seconds each heartbeat waited in the simulator for one of the ``concurrency`` request slots before it was sent
    # (the fleet's own queue: a real agent would already have been waiting on the portal)
    slot_waits: list[float] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def lost(self) -> int:
        """Sent but never answered (network error, timeout, cut off at the end)."""
        return self.sent - self.accepted - self.rejected_total

    def round_trip_ms(self) -> dict[str, float]:
        """p50/p95/p99/max of the answered heartbeats' round trips, in milliseconds (empty without any)."""
        return distribution_ms(self.round_trips)

    def slot_wait_ms(self) -> dict[str, float]:
        return distribution_ms(self.slot_waits)


def distribution_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations in seconds, in milliseconds (empty without any)."""
    ms = sorted(value * 1000 for value in seconds)
    if not ms:
        return {}
    return {"p50": statistics.median(ms), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": ms[-1]}


def percentile(samples: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``q`` % of the samples at or below it."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class FleetStats:
    machines: list[SimulatedMachine]
    started_at: float = 0.0  # time.time()
    finished_at: float = 0.0
    onboarding_seconds: float = 0.0  # from the start until the last machine finished onboarding
    # With ``onboarding_timeout``: when the timed window started (time.time(); 0 if it never did), and its heartbeats.
    window_started_at: float = 0.0
    window: HeartbeatCounters | None = None
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

    @property
    def window_seconds(self) -> float:
        return max(0.0, self.finished_at - self.window_started_at) if self.window_started_at else 0.0

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
        if self.window is not None and not self.window_started_at:
            lines.append("timed window: did not start (the fleet was stopped while onboarding)")
        elif self.window is not None:
            window = self.window
            lines.append(
                f"timed window ({self.window_seconds:.1f} s after the fleet had onboarded): {window.sent} sent, "
                f"{window.accepted} accepted, {window.rejected_total} rejected, {window.lost} lost"
            )
            if window.round_trips:
                lines.append(
                    "timed window round trips: "
                    + ", ".join(f"{name} {ms:.1f} ms" for name, ms in window.round_trip_ms().items())
                    + "; waits for a request slot before that: "
                    + ", ".join(f"{name} {ms:.1f} ms" for name, ms in window.slot_wait_ms().items())
                )
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
    """A key ``new_key_pem`` made (just now, or into the key cache). ``identity.load_key`` re-validates the RSA key
    (~70 ms of CPU, which would block the event loop once per machine); a key we generated ourselves needs no check
    (a damaged one would show up as rejected certificate requests or heartbeats, never pass silently)."""
    key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA key")
    return key


# --- The key cache --------------------------------------------------------------------------------------------
#
# Making a 2048-bit key costs ~50–65 ms of CPU: 10,000 of them are ~10 CPU-minutes that a benchmark would otherwise
# spend inside its run. The cache keeps one PEM file per machine index; every machine of a run still has its own,
# distinct key (a duplicate fails that machine's onboarding), and a run against a fresh database registers them anew.


def key_cache_path(directory: str | os.PathLike, index: int) -> Path:
    return Path(directory) / f"key-{index:05d}.pem"


def key_cache_missing(directory: str | os.PathLike, count: int) -> list[int]:
    """Indexes below ``count`` without a key file."""
    return [i for i in range(count) if not key_cache_path(directory, i).is_file()]


def _new_key_pem_for(index: int) -> bytes:
    return new_key_pem()


def fill_key_cache(
    directory: str | os.PathLike,
    count: int,
    *,
    workers: int | None = None,
    on_key: Callable[[int], None] | None = None,
) -> int:
    """Make the keys ``0 … count-1`` that the cache lacks (in ``workers`` processes; 0 = here), each written
    atomically with mode 0600, calling ``on_key(index)`` after each; returns how many were made."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    missing = key_cache_missing(directory, count)
    if not missing:
        return 0

    def store(index: int, pem: bytes) -> None:
        path = key_cache_path(directory, index)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.replace(partial, path)  # an interrupted fill leaves no half-written key behind
        if on_key is not None:
            on_key(index)

    if workers == 0:
        for index in missing:
            store(index, new_key_pem())
        return len(missing)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_key_worker_init
    ) as pool:
        for index, pem in zip(missing, pool.map(_new_key_pem_for, missing, chunksize=4), strict=True):
            store(index, pem)
    return len(missing)


def load_cached_key(directory: str | os.PathLike, index: int) -> rsa.RSAPrivateKey:
    return load_own_key(key_cache_path(directory, index).read_bytes())


def skip_failing_sniffio_import() -> None:
    """httpcore 1.0.x tries ``import sniffio`` for every lock it sets up (several per request), and anyio ≥ 4.11 no
    longer installs sniffio: every failed import searches ``sys.path`` again (encode/httpcore#1103). Profiled here,
    that was ~7% of the simulator's CPU. When sniffio is not installed, mark it absent in ``sys.modules`` so the
    import fails at once; httpcore then assumes asyncio, as it does after the slow failure."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


# --- Heartbeats over asyncio streams ------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class HeartbeatTransportError(Exception):
    """The portal's answer could not be read (no status line, a truncated chunk)."""


class HeartbeatSender:
    """One heartbeat = one HTTP/1.1 POST on a new TLS connection (``Connection: close``), over asyncio streams.

    The same request an agent sends — a new TLS handshake each time, as gunicorn's sync workers close every
    connection anyway — for about half the client CPU of ``httpx.AsyncClient`` (measured on this box: 1.3 against
    2.8 ms per request, TLS included). At 10,000 machines a minute the simulator shares 2 CPUs with the portal it
    measures, so that CPU is the portal's. Onboarding (a few requests per machine) stays on httpx.
    """

    def __init__(self, portal_url: str, ssl_ctx: ssl.SSLContext | bool, *, timeout: float, user_agent: str) -> None:
        parts = urlsplit(portal_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https:// URL: {portal_url}")
        self.host, self.port = parts.hostname, parts.port or 443
        self.netloc, self.prefix = parts.netloc, parts.path.rstrip("/")
        self.ssl = ssl_ctx if isinstance(ssl_ctx, ssl.SSLContext) else ssl.create_default_context()
        self.timeout, self.user_agent = timeout, user_agent

    def request_bytes(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self.netloc}", f"User-Agent: {self.user_agent}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> RawResponse:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
            try:
                writer.write(self.request_bytes(path, body, headers))
                raw = await reader.read()  # until the server closes, as "Connection: close" asks
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
        return parse_response(raw)


def parse_response(raw: bytes) -> RawResponse:
    """An HTTP/1.1 response read to the end of the connection: status, and the body (Content-Length or chunked)."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        raise HeartbeatTransportError("no complete response head")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HeartbeatTransportError(f"bad status line {status_line[:40]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(rest)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(rest) < length:
            raise HeartbeatTransportError("body shorter than its Content-Length")
        body = rest[:length]
    else:
        body = rest
    return RawResponse(int(parts[1]), body)


def _unchunk(data: bytes) -> bytes:
    body, position = bytearray(), 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise HeartbeatTransportError("truncated chunked body")
        size = int(data[position:end].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(body)
        start = end + 2
        if len(data) < start + size + 2:
            raise HeartbeatTransportError("truncated chunked body")
        body += data[start : start + size]
        position = start + size + 2


# Errors of one heartbeat without an answer: counted by class name, like httpx's.
HEARTBEAT_ERRORS = (OSError, EOFError, TimeoutError, HeartbeatTransportError, ValueError)


def _answer(response: httpx.Response | RawResponse) -> dict[str, Any]:
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

    async def _onboard(self, client: httpx.AsyncClient, tokens: _TokenSource, machine: SimulatedMachine, key):
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
                tokens = _TokenSource(client, config)
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
