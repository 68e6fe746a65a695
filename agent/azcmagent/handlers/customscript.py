"""``Microsoft.Azure.Extensions/CustomScript`` (Linux): download ``fileUris``, run ``commandToExecute`` or ``script``.

Settings as Azure's Custom Script Extension v2 takes them: public ``commandToExecute``, ``script`` (base64, gzip
optional), ``fileUris``, ``skipDos2Unix``, ``timestamp``; protected ``commandToExecute``, ``script``, ``fileUris``,
``storageAccountName``/``storageAccountKey`` and ``managedIdentity`` (accepted, not used: downloads are plain https).
A setting may be public or protected, not both; exactly one of ``commandToExecute`` and ``script``.

The command (or script) is never written to disk: it goes into an in-memory file (``memfd``) that ``/bin/sh``
reads as ``/dev/fd/N``. It runs in ``workdir`` (where ``fileUris`` were saved) in its own process group, with the
timeout, its output in ``workdir/stdout`` and ``workdir/stderr`` (at most 16 MiB each) and the last 4 KiB in the report.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

from azcmagent.download import DownloadError
from azcmagent.handlers.base import HandlerContext, HandlerResult
from azcmagent.process import run_process
from azcmagent.protocol import tail_text

PUBLIC_KEYS = {"commandToExecute", "script", "fileUris", "skipDos2Unix", "timestamp"}
PROTECTED_KEYS = {
    "commandToExecute",
    "script",
    "fileUris",
    "storageAccountName",
    "storageAccountKey",
    "managedIdentity",
}
MAX_SCRIPT_BYTES = 4 * 1024 * 1024  # after gunzip
DOS2UNIX_MAX_BYTES = 16 * 1024 * 1024
MESSAGE_TAIL = 1800  # bytes of each stream in the status message (the substatuses carry 4 KiB each)


class SettingsError(ValueError):
    pass


def _merged(settings: dict[str, Any], protected: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(settings) - PUBLIC_KEYS) + sorted(set(protected) - PROTECTED_KEYS)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)} for CustomScript")
    both = sorted(set(settings) & set(protected))
    if both:
        raise SettingsError(f"{', '.join(both)} may be in settings or in protectedSettings, not in both")
    merged = {**settings, **protected}
    if ("commandToExecute" in merged) == ("script" in merged):
        raise SettingsError("set exactly one of commandToExecute and script")
    for key in ("commandToExecute", "script"):
        if key in merged and (not isinstance(merged[key], str) or not merged[key].strip()):
            raise SettingsError(f"{key} must be a non-empty string")
    uris = merged.get("fileUris", [])
    if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
        raise SettingsError("fileUris must be a list of URIs")
    if not isinstance(merged.get("skipDos2Unix", False), bool):
        raise SettingsError("skipDos2Unix must be true or false")
    if "timestamp" in merged and (not isinstance(merged["timestamp"], int) or isinstance(merged["timestamp"], bool)):
        raise SettingsError("timestamp must be a whole number")
    return merged


def decode_script(value: str) -> bytes:
    """``script``: base64, optionally of gzip data (Azure's format)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SettingsError("script must be base64 (optionally of gzip data)") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            decompressor = zlib.decompressobj(wbits=31)
            raw = decompressor.decompress(raw, MAX_SCRIPT_BYTES + 1)
        except zlib.error as exc:
            raise SettingsError("script looks gzipped but does not decompress") from exc
        if len(raw) > MAX_SCRIPT_BYTES:
            raise SettingsError(f"script is larger than {MAX_SCRIPT_BYTES} bytes once decompressed")
    return raw


def dos2unix(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _convert_file(path: Path) -> None:
    if path.stat().st_size > DOS2UNIX_MAX_BYTES:
        return
    data = path.read_bytes()
    if b"\x00" not in data[:8192] and b"\r\n" in data:  # text files only
        path.write_bytes(dos2unix(data))


def _section(title: str, data: bytes) -> str:
    """One part of the status message, which reads like Azure's: ``Enable succeeded: [stdout] … [stderr] …``."""
    text = tail_text(data, MESSAGE_TAIL)
    return f"\n[{title}]\n{text}" + ("" if not text or text.endswith("\n") else "\n")


class CustomScriptHandler:
    publisher = "Microsoft.Azure.Extensions"
    type = "CustomScript"

    def __init__(self, context: HandlerContext) -> None:
        self.context = context

    def enable(
        self, settings: dict[str, Any], protected: dict[str, Any], workdir: Path, timeout: float
    ) -> HandlerResult:
        try:
            merged = _merged(settings, protected)
            body = (
                merged["commandToExecute"].encode() + b"\n"
                if "commandToExecute" in merged
                else decode_script(merged["script"])
            )
        except SettingsError as exc:
            return HandlerResult(False, f"Enable failed: {exc}")
        skip = merged.get("skipDos2Unix", False)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            for uri in merged.get("fileUris", []):
                saved = self.context.downloader.fetch(uri, workdir)
                if not skip:
                    _convert_file(saved)
        except DownloadError as exc:
            return HandlerResult(False, f"Enable failed: {exc}")
        if not skip:
            body = dos2unix(body)
        fd = os.memfd_create("customscript")
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            result = run_process(
                ["/bin/sh", f"/dev/fd/{fd}"],
                cwd=workdir,
                env=self.context.env,
                timeout=timeout,
                stdout_path=workdir / "stdout",
                stderr_path=workdir / "stderr",
                stop=self.context.stop,
                pass_fds=[fd],
                on_start=self.context.on_start,
            )
        finally:
            os.close(fd)
        output = _section("stdout", result.stdout) + _section("stderr", result.stderr)
        if result.stopped:
            message = "Enable interrupted: the agent stopped"
        elif result.timed_out:
            message = f"Enable failed: the command did not finish within {timeout:g} seconds and was killed"
        elif result.exit_code == 0:
            message = "Enable succeeded: "
        else:
            message = f"Enable failed: the command exited with code {result.exit_code}"
        return HandlerResult(
            ok=result.exit_code == 0,
            message=message + output,
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=result.timed_out,
            stopped=result.stopped,
        )

    def uninstall(self, handler_dir: Path) -> HandlerResult:
        if handler_dir.exists():
            shutil.rmtree(handler_dir)
            return HandlerResult(True, f"Uninstall succeeded: removed {handler_dir}")
        return HandlerResult(True, "Uninstall succeeded: nothing was installed")
