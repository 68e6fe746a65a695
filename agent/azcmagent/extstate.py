"""``extensions/state.json``: what the extension manager applied, what is in flight, what is still to report.

```
{"vmId":        "<the machine identity these sequences belong to (a new connect starts afresh)>",
 "extensions":  {"<name>": {"sequence": 3, "operation": "install", "state": "Succeeded", "publisher": …, "type": …,
                            "version": …, "time": …, "message": …}},
 "runCommands": {"<name>": {"sequence": 1, "state": "Succeeded", "time": …}},
 "inFlight":    {"kind": "extensions", "name": …, "sequence": 3, "operation": "install", "startTime": …,
                 "pid": 1234, "pidStart": "5678"} | null,
 "outbox":      [{"id": …, "kind": "extensions", "name": …, "body": {<terminal report>}}]}
```

Written atomically (temporary file + rename) before an operation starts and when it ends, so a restart never runs
an applied sequence again and always reports an interrupted one. Protected settings never go in here. One writer:
the goal-state worker thread of the agent service (``azcmagent extension list`` only reads).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from azcmagent import config
from azcmagent.protocol import iso

KINDS = ("extensions", "runCommands")


class ExtensionState:
    def __init__(self, path: Path, *, vm_id: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()
        self.data = self._load()
        if vm_id and self.data.get("vmId") != vm_id:
            # Another identity (disconnect + connect): its sequences mean nothing for this one.
            self.data = {"vmId": vm_id, "extensions": {}, "runCommands": {}, "inFlight": None, "outbox": []}
            self._save()

    def _load(self) -> dict[str, Any]:
        data = config.read_json(self.path)
        for kind in KINDS:
            if not isinstance(data.get(kind), dict):
                data[kind] = {}
        if not isinstance(data.get("outbox"), list):
            data["outbox"] = []
        if not isinstance(data.get("inFlight"), dict):
            data["inFlight"] = None
        return data

    def _save(self) -> None:
        config.write_json(self.path, self.data, mode=0o600)

    def applied(self, kind: str, name: str) -> int:
        """The last sequence applied for this name (-1: none)."""
        entry = self.data[kind].get(name)
        return int(entry.get("sequence", -1)) if isinstance(entry, dict) else -1

    def entry(self, kind: str, name: str) -> dict[str, Any]:
        entry = self.data[kind].get(name)
        return dict(entry) if isinstance(entry, dict) else {}

    @property
    def in_flight(self) -> dict[str, Any] | None:
        return self.data["inFlight"]

    def begin(self, kind: str, name: str, sequence: int, operation: str, **details: Any) -> None:
        """Record the operation about to start (``details``: what ``extension list`` shows if it never ends)."""
        with self._lock:
            self.data["inFlight"] = {
                "kind": kind,
                "name": name,
                "sequence": sequence,
                "operation": operation,
                "startTime": iso(),
                **details,
            }
            self._save()

    def started_process(self, pid: int, start_ticks: str) -> None:
        with self._lock:
            if self.data["inFlight"] is not None:
                self.data["inFlight"].update(pid=pid, pidStart=start_ticks)
                self._save()

    def finish(self, kind: str, name: str, sequence: int, entry: dict[str, Any], report: dict[str, Any]) -> None:
        """One write: the sequence is applied, nothing is in flight, the terminal report waits in the outbox."""
        with self._lock:
            self.data[kind][name] = {**entry, "sequence": sequence, "time": iso()}
            self.data["inFlight"] = None
            self.data["outbox"].append({"id": str(uuid.uuid4()), "kind": kind, "name": name, "body": report})
            self._save()

    def outbox(self) -> list[dict[str, Any]]:
        return list(self.data["outbox"])

    def delivered(self, report_id: str) -> None:
        with self._lock:
            self.data["outbox"] = [item for item in self.data["outbox"] if item.get("id") != report_id]
            self._save()
