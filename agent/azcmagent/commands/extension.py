"""``azcmagent extension list``: the extensions this machine has, from the extension manager's state file."""

from __future__ import annotations

import argparse
import json

from azcmagent import config, errors
from azcmagent.errors import AgentError


def installed() -> list[dict[str, object]]:
    """Every extension the manager applied and did not delete (``extensions/state.json``)."""
    state = config.read_json(config.paths().extensions_state)
    extensions = state.get("extensions") if isinstance(state.get("extensions"), dict) else {}
    rows = []
    for name, entry in sorted(extensions.items()):
        if not isinstance(entry, dict) or entry.get("state") == "Deleted":
            continue
        rows.append(
            {
                "name": name,
                "publisher": entry.get("publisher", ""),
                "type": entry.get("type", ""),
                "version": entry.get("version", ""),
                "state": entry.get("state", ""),
                "sequence": entry.get("sequence", ""),
                "lastOperation": entry.get("operation", ""),
                "time": entry.get("time", ""),
            }
        )
    return rows


def cmd_extension(args: argparse.Namespace) -> int:
    if args.extension_command not in ("list", None):
        raise AgentError(errors.INVALID_ARGUMENTS, "Use 'azcmagent extension list'.")
    rows = installed()
    if args.json:
        print(json.dumps(rows, indent=2))
        return errors.OK
    print(f"{'NAME':<32} {'PUBLISHER':<32} {'TYPE':<28} {'VERSION':<10} {'STATE':<10} LAST OPERATION")
    for row in rows:
        print(
            f"{row['name']:<32} {row['publisher']:<32} {row['type']:<28} {row['version']:<10} {row['state']:<10} "
            f"{row['lastOperation']} (sequence {row['sequence']}, {row['time']})"
        )
    return errors.OK
