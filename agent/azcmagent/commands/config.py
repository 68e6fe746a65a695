"""``azcmagent config get|set|clear|list|info``: the local settings in ``localconfig.json`` (ARC-REFERENCE.md §2.5)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from azcmagent import config, errors
from azcmagent.errors import AgentError


def cmd_config(args: argparse.Namespace) -> int:
    paths = config.paths()
    stored = config.read_json(paths.localconfig)
    values = config.local_config()
    command = args.config_command
    if command in ("list", "info", None):
        if args.json:
            print(json.dumps(values, indent=2, sort_keys=True))
            return errors.OK
        print("Local Configuration Settings")
        for key in config.LOCAL_DEFAULTS:
            print(f"  {key:<52}: {display(values[key])}")
        return errors.OK
    if args.key not in config.LOCAL_DEFAULTS:
        raise AgentError(errors.INVALID_ARGUMENTS, f"Unknown configuration property {args.key!r}.")
    if command == "get":
        print(f"{args.key} : {display(values[args.key])}")
        return errors.OK
    if (
        values.get("config.mode") == "monitor"
        and args.key in config.LOCKED_IN_MONITOR_MODE
        and command in ("set", "clear")
    ):
        raise AgentError(errors.LOCAL_CONFIG_UPDATE, f"{args.key} is locked while config.mode is monitor.")
    if command == "clear":
        stored.pop(args.key, None)
        config.write_json(paths.localconfig, stored)
        print(f"Config property {args.key} cleared")
        return errors.OK
    try:
        value = config.coerce_local_value(args.key, args.value)
    except ValueError as exc:
        raise AgentError(errors.INVALID_ARGUMENTS, str(exc)) from exc
    if args.add or args.remove:
        if args.key not in config.LIST_KEYS:
            raise AgentError(errors.INVALID_ARGUMENTS, f"--add/--remove only apply to list properties, not {args.key}.")
        current = list(values[args.key])
        if args.add:
            value = current + [v for v in value if v not in current]
        else:
            value = [v for v in current if v not in value]
    stored[args.key] = value
    config.write_json(paths.localconfig, stored)
    print(f"Config property {args.key} set to value {display(value)}")
    return errors.OK


def display(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]" if value else "[]"
    return str(value)
