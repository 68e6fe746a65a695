"""The handler interface's types (``azcmagent.handlers`` documents it and holds the registry)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from azcmagent.download import Downloader


@dataclass(frozen=True)
class HandlerContext:
    downloader: Downloader
    stop: threading.Event  # set when the agent stops: end the operation at once
    env: dict[str, str] = field(default_factory=dict)  # the environment handler processes start with
    on_start: Any = None  # called with the pid of a process the handler starts (recorded for restart safety)


@dataclass(frozen=True)
class HandlerResult:
    ok: bool
    message: str
    exit_code: int | None = None
    stdout: bytes = b""  # the last 4 KiB
    stderr: bytes = b""
    timed_out: bool = False
    stopped: bool = False  # the agent stopped during the operation: nothing is reported until it starts again


class Handler(Protocol):
    publisher: str
    type: str

    def __init__(self, context: HandlerContext) -> None: ...

    def enable(
        self, settings: dict[str, Any], protected: dict[str, Any], workdir: Path, timeout: float
    ) -> HandlerResult: ...

    def uninstall(self, handler_dir: Path) -> HandlerResult: ...


class WindowsOnlyHandler:
    """``Microsoft.Compute/CustomScriptExtension`` is Azure's Windows script extension: refused honestly here."""

    publisher = "Microsoft.Compute"
    type = "CustomScriptExtension"

    def __init__(self, context: HandlerContext) -> None:
        self.context = context

    def enable(self, settings, protected, workdir, timeout) -> HandlerResult:
        return HandlerResult(
            False,
            f"{self.publisher}/{self.type} is a Windows-only extension and this agent runs on Linux: use "
            "Microsoft.Azure.Extensions/CustomScript for Linux machines.",
        )

    def uninstall(self, handler_dir: Path) -> HandlerResult:
        return HandlerResult(True, "Nothing to remove: the Windows-only extension was never installed here.")
