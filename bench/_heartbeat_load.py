"""The load side of bench/heartbeat_ingest.py: heartbeats pre-signed with the agent's own helper, fired from a process
of their own (asyncio, raw HTTP/1.1), the CPU each kind of process spent on them, and the flush loop that stands in
for beat. The environment, gunicorn and /proc helpers are bench/_harness/'s."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time

from _harness import child_pids, process_cpu
from _harness.loadgen import BODY

# --- Requests -----------------------------------------------------------------------------------------------------

_SIGN_STATE: dict = {}


def _sign_init(key_pems: list[bytes]) -> None:
    from azcmagent import identity

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool terminates its workers: no KeyboardInterrupt noise

    _SIGN_STATE["keys"] = [identity.load_key(pem) for pem in key_pems]


def _sign(job: tuple[str, int, str, str, bytes, str]) -> bytes:
    from azcmagent import identity

    vm_id, key_index, thumbprint, host, body, path = job
    token = identity.heartbeat_token(_SIGN_STATE["keys"][key_index], thumbprint=thumbprint, vm_id=vm_id, body=body)
    return _request(path.format(vm_id=vm_id), host, body, token)


def _request(path: str, host: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def presign(pool, fleet, count: int, host: str, path: str = "/his/machines/{vm_id}/heartbeat") -> list[bytes]:
    """``count`` heartbeat requests, round robin over the fleet, each with its own jti (2 signing processes)."""
    from azcmagent import identity

    body = json.dumps(BODY).encode()
    jobs = [
        (vm_id, key, thumbprint, host, body, path)
        for vm_id, key, thumbprint in (fleet[i % len(fleet)] for i in range(count))
    ]
    pems = [identity.key_pem(key) for key in pool]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2, _sign_init, (pems,)) as workers:
        return workers.map(_sign, jobs, chunksize=256)


# --- Load generator (its own process) -----------------------------------------------------------------------------


async def _fire(port: int, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    statuses: dict[int, int] = {}
    errors = 0
    queue = iter(requests)
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        for raw in queue:
            if time.monotonic() >= deadline:
                return
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                writer.write(raw)
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 30)
                writer.close()
                code = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
                statuses[code] = statuses.get(code, 0) + 1
            except (OSError, TimeoutError, ValueError, IndexError):
                errors += 1

    started, cpu = time.monotonic(), os.times()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed, spent = time.monotonic() - started, os.times()
    load_cpu = spent.user + spent.system - cpu.user - cpu.system
    return {"statuses": statuses, "errors": errors, "elapsed": elapsed, "load_cpu": load_cpu}


def _load_process(port, requests, concurrency, seconds, out) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out.put(asyncio.run(_fire(port, requests, concurrency, seconds)))


def fire(port: int, requests: list[bytes], concurrency: int, seconds: float, meter: CpuMeter | None = None) -> dict:
    before = meter.sample() if meter else {}
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    process = ctx.Process(target=_load_process, args=(port, requests, concurrency, seconds, out))
    process.start()
    try:
        result = out.get(timeout=seconds + 120)
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    ok = result["statuses"].get(200, 0)
    result["ok"] = ok
    result["rate"] = ok / result["elapsed"] if result["elapsed"] else 0.0
    if meter:
        after = meter.sample()
        result["cpu"] = {
            name: sum(spent - before[name].get(pid, 0.0) for pid, spent in pids.items()) for name, pids in after.items()
        }
        result["cpu"]["load generator"] = result["load_cpu"]
    return result


# --- Where the CPU goes ---------------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds spent so far by the gunicorn workers, the PostgreSQL backends of the bench database, and the
    Redis server (``INFO cpu``: all its clients, not only this bench's). Sampled around each phase, divided by the
    requests answered: a figure that does not move when another program takes CPU from the box, unlike req/s."""

    def __init__(self, gunicorn_pid: int, redis_url: str, database: str) -> None:
        import redis

        self.gunicorn_pid = gunicorn_pid
        self.database = database
        self.redis = redis.Redis.from_url(redis_url)
        self.seen: dict[int, float] = {}

    def _backends(self) -> list[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database])
            return [row[0] for row in cursor.fetchall()]

    def sample(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far, by kind and process id (processes come and go: a phase counts the ones alive at its
        end, from 0 for those born during it)."""
        info = self.redis.info("cpu")
        own = os.times()
        return {
            "flush loop": {0: own.user + own.system},  # this process: the flush thread (the main thread only waits)
            "gunicorn": {pid: process_cpu(pid) for pid in [self.gunicorn_pid, *child_pids(self.gunicorn_pid)]},
            "postgres": {pid: process_cpu(pid) for pid in self._backends()},
            "redis": {0: float(info["used_cpu_user"]) + float(info["used_cpu_sys"])},
        }


def cpu_per_request(results: list[dict]) -> dict[str, float]:
    """Milliseconds of CPU per answered request, by process kind, over several phases."""
    ok = sum(r["ok"] for r in results) or 1
    names = results[0]["cpu"].keys()
    return {name: sum(r["cpu"][name] for r in results) * 1000 / ok for name in names}


class FlushLoop(threading.Thread):
    """What the beat entry ``machine-heartbeat-flush`` does, without Celery: ``heartbeat_flush()`` every 2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.flushes = self.rows = 0
        self.seconds: list[float] = []

    def run(self) -> None:
        from django.db import connection

        from machines.heartbeats import heartbeat_flush

        try:
            while not self.stop.wait(2.0):
                started = time.perf_counter()
                count = heartbeat_flush()
                if count:
                    self.flushes += 1
                    self.rows += count
                    self.seconds.append(time.perf_counter() - started)
        finally:
            connection.close()
