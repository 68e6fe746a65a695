"""Load for the serving benches, from processes of its own: requests as agents send them (HTTP/1.1 over a new TLS
connection each, ``Connection: close``), pre-signed heartbeats, a fixed arrival rate, and slow clients that hold
half-sent requests while ``/healthz`` is timed.

Each run happens in a forked child (``in_child``), so its CPU is counted apart from the servers' and the parent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import ssl
import time
from collections import Counter

BODY = {
    "agentVersion": "1.50.0",
    "osName": "linux",
    "osType": "linux",
    "osVersion": "6.1.0",
    "osSku": "Debian GNU/Linux 12 (bookworm)",
    "computerName": "bench",
    "domainName": "contoso.local",
}


def request_bytes(path: str, host: str, body: bytes = b"", token: str = "", method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; 0 without values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def distribution(ms: list[float]) -> dict[str, float]:
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": max(ms or [0.0])}


# --- Pre-signed heartbeats -------------------------------------------------------------------------------------------

_SIGN: dict = {}


def _sign_init(key_pems: list[bytes]) -> None:
    from azcmagent import identity

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _SIGN["keys"] = [identity.load_key(pem) for pem in key_pems]


def _sign(job: tuple[str, int, str, str, bytes]) -> bytes:
    from azcmagent import identity

    vm_id, key_index, thumbprint, host, body = job
    token = identity.heartbeat_token(_SIGN["keys"][key_index], thumbprint=thumbprint, vm_id=vm_id, body=body)
    return request_bytes(f"/his/machines/{vm_id}/heartbeat", host, body, token)


def presign(keys, fleet: list[tuple[str, int, str]], count: int, host: str) -> list[bytes]:
    """``count`` heartbeat requests round robin over ``fleet`` ((vmId, key index, thumbprint)), each its own jti."""
    from azcmagent import identity

    body = json.dumps(BODY).encode()
    jobs = [(*fleet[i % len(fleet)], host, body) for i in range(count)]
    pems = [identity.key_pem(key) for key in keys]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2, _sign_init, (pems,)) as pool:
        return pool.map(_sign, jobs, chunksize=256)


# --- One request -----------------------------------------------------------------------------------------------------


async def exchange(port: int, context: ssl.SSLContext, raw: bytes, timeout: float) -> int:
    """Send ``raw`` on a new TLS connection, read the answer to the end; the status code (0: no status line)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
        try:
            writer.write(raw)
            answer = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    head = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(head[1]) if len(head) > 1 and head[0].startswith(b"HTTP/") and head[1].isdigit() else 0


def client_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


# --- Closed loop: as many as it answers -----------------------------------------------------------------------------


async def closed_loop(port: int, ca_file: str, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    context = client_context(ca_file)
    statuses: Counter = Counter()
    errors: Counter = Counter()
    queue = iter(requests)
    deadline = time.monotonic() + seconds

    async def client() -> None:
        for raw in queue:
            if time.monotonic() >= deadline:
                return
            try:
                statuses[await exchange(port, context, raw, 30)] += 1
            except (OSError, TimeoutError, ssl.SSLError, ValueError) as exc:
                errors[type(exc).__name__] += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"statuses": dict(statuses), "errors": dict(errors), "elapsed": elapsed, "ok": statuses[200]}


# --- Open loop: a fixed arrival rate, latency from the planned send time ----------------------------------------------


async def fixed_rate(port: int, ca_file: str, requests: list[bytes], rate: float, seconds: float) -> dict:
    """One request every 1/rate s whatever the answers (latency counts from when it was due, so a stalled server
    shows as latency, not as a lower rate); at most ``rate × seconds`` requests."""
    context = client_context(ca_file)
    statuses: Counter = Counter()
    errors: Counter = Counter()
    latencies: list[float] = []
    count = min(len(requests), int(rate * seconds))
    started = time.monotonic()

    async def one(due: float, raw: bytes) -> None:
        try:
            status = await exchange(port, context, raw, 30)
            statuses[status] += 1
            if status == 200:
                latencies.append((time.monotonic() - due) * 1000)
        except (OSError, TimeoutError, ssl.SSLError, ValueError) as exc:
            errors[type(exc).__name__] += 1

    tasks = []
    for index in range(count):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due, requests[index])))
    await asyncio.gather(*tasks)
    return {
        "statuses": dict(statuses),
        "errors": dict(errors),
        "sent": count,
        "elapsed": time.monotonic() - started,
        "latency_ms": distribution(latencies),
        "ok": statuses[200],
    }


# --- Slow clients: half-sent requests held open, /healthz timed meanwhile --------------------------------------------

FORM_HEAD = (
    b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 1000\r\n\r\n"
)


async def _slow_client(port: int, context: ssl.SSLContext, index: int, hold: asyncio.Event, held: list) -> None:
    """A TLS connection that sends half a request and then one byte every 2 s: half of them stop inside the
    headers, half inside the declared 1,000-byte body of a sign-in form (which the portal reads: its input guard
    checks every form body)."""
    try:
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    except (OSError, TimeoutError, ssl.SSLError):
        return
    if index % 2:
        writer.write(FORM_HEAD + b"username=")
        trickle = b"a"
    else:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        trickle = b"a"
    held.append(writer)
    try:
        while not hold.is_set():
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hold.wait(), 2)
            writer.write(trickle)
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def slow_clients(port: int, ca_file: str, clients: int, seconds: float, probe_port: int | None = None) -> dict:
    """``clients`` slow clients on ``port``; meanwhile ``GET /healthz`` one after another (a new TLS connection each,
    10-s timeout) on ``probe_port`` (default the same) for ``seconds``."""
    context = client_context(ca_file)
    hold = asyncio.Event()
    held: list = []
    slow = [asyncio.ensure_future(_slow_client(port, context, i, hold, held)) for i in range(clients)]
    await asyncio.sleep(2)  # they connect (or fail to) and send their halves
    connected = len(held)
    probe = request_bytes("/healthz", "127.0.0.1", method="GET")
    latencies: list[float] = []
    failures: Counter = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status = await exchange(probe_port or port, context, probe, 10)
            if status != 200:
                failures[f"HTTP {status}"] += 1
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            failures[type(exc).__name__] += 1
        latencies.append((time.monotonic() - started) * 1000)
        await asyncio.sleep(0.02)
    still_open = sum(1 for writer in held if not writer.is_closing())
    hold.set()
    await asyncio.gather(*slow, return_exceptions=True)
    return {
        "connected": connected,
        "still_open": still_open,
        "probes": len(latencies),
        "failures": dict(failures),
        "latency_ms": distribution(latencies),
    }


# --- In a child process --------------------------------------------------------------------------------------------


def _child(out, function, args) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    started = os.times()
    result = asyncio.run(function(*args))
    spent = os.times()
    result["cpu"] = spent.user + spent.system - started.user - started.system
    out.put(result)


def in_child(function, *args, timeout: float) -> dict:
    """``asyncio.run(function(*args))`` in a forked process; its result with ``cpu`` = the child's CPU seconds."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    process = ctx.Process(target=_child, args=(out, function, args))
    process.start()
    try:
        return out.get(timeout=timeout)
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
