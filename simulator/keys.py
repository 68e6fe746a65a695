"""Machine keys for the simulator: one 2048-bit RSA key per machine, made in a process pool, or read from a key cache
of PEM files made beforehand (``fill_key_cache``). No Django."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from azcmagent import identity
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


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
