"""Run a handler's or a run command's process: own process group, timeout, bounded output.

The child's stdout and stderr are pipes read here in 64 KiB chunks: each chunk goes to a file (at most
``FILE_LIMIT`` bytes per stream, so a flood cannot fill the disk) and into a tail buffer of the last ``TAIL_BYTES``
bytes (what the report carries). Memory stays the same whatever the process prints. On timeout (or when the agent
stops) the whole process group gets SIGTERM, then SIGKILL after ``KILL_GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from azcmagent.protocol import MESSAGE_LIMIT

TAIL_BYTES = MESSAGE_LIMIT
FILE_LIMIT = 16 * 1024 * 1024
CHUNK = 64 * 1024
KILL_GRACE_SECONDS = 2.0
DRAIN_SECONDS = 2.0  # after the process ends, how long to read what its leftover children still write
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None  # None when killed for the timeout or a stop; 128+N when ended by signal N
    timed_out: bool
    stopped: bool  # the agent was stopping
    stdout: bytes  # the last TAIL_BYTES
    stderr: bytes
    started: float  # time.time()
    ended: float


class _Stream:
    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.written = 0
        self.tail = bytearray()

    def take(self, data: bytes) -> None:
        room = FILE_LIMIT - self.written
        if room > 0:
            self.file.write(data[:room])
            self.written += min(room, len(data))
        if len(data) >= TAIL_BYTES:
            self.tail = bytearray(data[-TAIL_BYTES:])
        else:
            self.tail += data
            del self.tail[: max(0, len(self.tail) - TAIL_BYTES)]

    def close(self) -> None:
        self.file.close()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def process_start_ticks(pid: int) -> str:
    """The process's start time in clock ticks (``/proc/<pid>/stat`` field 22), to recognise it after a restart;
    "" when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdout_path: Path,
    stderr_path: Path,
    stop: threading.Event | None = None,
    pass_fds: Sequence[int] = (),
    on_start: Callable[[int], None] | None = None,
) -> ProcessResult:
    started = time.time()
    out, err = _Stream(stdout_path), _Stream(stderr_path)
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills the children too
            pass_fds=tuple(pass_fds),
            close_fds=True,
        )
    except OSError:
        out.close()
        err.close()
        raise
    timed_out = stopped = False
    try:
        if on_start is not None:
            try:
                on_start(process.pid)
            except BaseException:
                stopped = True  # it could not be recorded: end it rather than leave it unaccounted for
                raise
        timed_out, stopped = _pump(process, out, err, time.monotonic() + timeout, stop)
    finally:
        if timed_out or stopped:
            kill_group(process.pid)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        out.close()
        err.close()
    code = process.wait()
    exit_code = None if timed_out or stopped else (code if code >= 0 else 128 - code)
    return ProcessResult(exit_code, timed_out, stopped, bytes(out.tail), bytes(err.tail), started, time.time())


def _pump(process, out: _Stream, err: _Stream, deadline: float, stop: threading.Event | None) -> tuple[bool, bool]:
    streams = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    timed_out = stopped = False
    terminated_at: float | None = None
    killed = False
    drain_until: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if terminated_at is None:
                if now >= deadline:
                    timed_out = True
                elif stop is not None and stop.is_set():
                    stopped = True
                if timed_out or stopped:
                    kill_group(process.pid, signal.SIGTERM)
                    terminated_at = now
            elif not killed and now - terminated_at >= KILL_GRACE_SECONDS:
                kill_group(process.pid, signal.SIGKILL)
                killed = True
            if drain_until is None and process.poll() is not None:
                drain_until = now + DRAIN_SECONDS
            if drain_until is not None and now >= drain_until:
                break  # the process ended; a child it left behind keeps the pipe open: stop reading
            for key, _ in selector.select(POLL_SECONDS):
                data = os.read(key.fd, CHUNK)
                if data:
                    streams[key.fd].take(data)
                else:
                    selector.unregister(key.fd)
    finally:
        selector.close()
    return timed_out, stopped
