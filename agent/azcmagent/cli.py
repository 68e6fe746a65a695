"""Command line of the agent: ``azcmagent connect|disconnect|show|check|config|extension|logs|version|service``.

This module parses the command line (flags, ``--config FILE``) and dispatches to ``azcmagent.commands.<name>``.
Output follows azcmagent: logrus-style lines, ``Exit Code: AZCM00NN: …`` on failure, and the documented process exit
codes (ARC-REFERENCE.md §2.7).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from azcmagent import __version__, errors, log
from azcmagent.commands import check, connect, extension, logs, show
from azcmagent.commands import config as config_command
from azcmagent.commands import service as service_command
from azcmagent.errors import AgentError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is AZCM0023 / exit 23."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        log.info(f"Exit Code: AZCM0023: Invalid parameter: {message}")
        log.fatal(message)
        raise SystemExit(errors.INVALID_ARGUMENTS)


def _add_auth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--service-principal-id", default="")
    parser.add_argument("-p", "--service-principal-secret", default="")
    parser.add_argument("--access-token", default="")
    parser.add_argument("--use-device-code", action="store_true")
    parser.add_argument("-t", "--tenant-id", default="")
    parser.add_argument("--portal-url", default="", help="ArcPortal base URL (default: what the installer recorded)")
    parser.add_argument("--ca-file", default="", help="CA certificate to trust for the portal")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="azcmagent", description="Azure Connected Machine agent (ArcPortal)")
    sub = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    connect = sub.add_parser("connect", help="Connect this machine to Azure Arc")
    _add_auth(connect)
    connect.add_argument("-g", "--resource-group", default="")
    connect.add_argument("-l", "--location", default="")
    connect.add_argument("-s", "--subscription-id", default="")
    connect.add_argument("-n", "--resource-name", default="")
    connect.add_argument("--cloud", default="AzureCloud")
    connect.add_argument("--tags", default="")
    connect.add_argument("--correlation-id", default="")
    connect.add_argument("--ignore-network-check", action="store_true")

    disconnect = sub.add_parser("disconnect", help="Delete the Azure resource and reset the local configuration")
    _add_auth(disconnect)
    disconnect.add_argument("-f", "--force-local-only", action="store_true")

    show = sub.add_parser("show", help="Show the agent's status and configuration")
    show.add_argument("properties", nargs="*")
    show.add_argument("-j", "--json", action="store_true")

    check = sub.add_parser("check", help="Check connectivity to the portal's endpoints")
    check.add_argument("--location", default="")
    check.add_argument("--cloud", default="AzureCloud")
    check.add_argument("--portal-url", default="")
    check.add_argument("--ca-file", default="")
    check.add_argument("-j", "--json", action="store_true")

    cfg = sub.add_parser("config", help="Local configuration settings")
    cfg_sub = cfg.add_subparsers(dest="config_command", parser_class=ArgumentParser)
    cfg_get = cfg_sub.add_parser("get")
    cfg_get.add_argument("key")
    cfg_set = cfg_sub.add_parser("set")
    cfg_set.add_argument("key")
    cfg_set.add_argument("value")
    group = cfg_set.add_mutually_exclusive_group()
    group.add_argument("--add", action="store_true")
    group.add_argument("--remove", action="store_true")
    cfg_sub.add_parser("list")
    cfg_sub.add_parser("info")
    cfg_clear = cfg_sub.add_parser("clear")
    cfg_clear.add_argument("key")
    cfg.add_argument("-j", "--json", action="store_true")

    logs = sub.add_parser("logs", help="Collect the agent's logs into a zip file")
    logs.add_argument("-o", "--output", default="")
    logs.add_argument("-f", "--full", action="store_true")

    sub.add_parser("version", help="Show the agent version")

    ext = sub.add_parser("extension", help="The extensions installed on this machine")
    ext_sub = ext.add_subparsers(dest="extension_command", parser_class=ArgumentParser)
    ext_list = ext_sub.add_parser("list")
    ext_list.add_argument("-j", "--json", action="store_true")
    ext.set_defaults(json=False)

    svc = sub.add_parser("service", help="Run the agent service (himds)")
    svc_sub = svc.add_subparsers(dest="service_command", parser_class=ArgumentParser)
    svc_sub.add_parser("run")
    svc_sub.add_parser("start")
    svc_sub.add_parser("stop")
    return parser


def _fail(exc: AgentError) -> int:
    log.error(exc.detail)
    log.info(f"Exit Code: {exc.azcm}: {exc.title}")
    log.fatal(exc.detail)
    return exc.exit_code


COMMANDS = {
    "connect": connect.cmd_connect,
    "disconnect": connect.cmd_disconnect,
    "show": show.cmd_show,
    "check": check.cmd_check,
    "config": config_command.cmd_config,
    "logs": logs.cmd_logs,
    "extension": extension.cmd_extension,
    "service": service_command.cmd_service,
}


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string (of every subcommand) that takes a value."""
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _value_options(sub)
        elif action.option_strings and isinstance(action, argparse._StoreAction):
            found.update(action.option_strings)
    return found


def normalize_argv(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--opt value`` → ``--opt=value`` so a value that starts with ``-`` (a generated secret, a tag) is taken as
    the value, the way azcmagent takes it, instead of being read as another option."""
    options = _value_options(parser)
    result: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in options and i + 1 < len(argv):
            long = arg if arg.startswith("--") else _long_form(parser, arg)
            result.append(f"{long}={argv[i + 1]}")
            i += 2
            continue
        result.append(arg)
        i += 1
    return result


def _long_form(parser: argparse.ArgumentParser, short: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found = _long_form(sub, short)
                if found != short:
                    return found
        elif short in action.option_strings:
            longs = [o for o in action.option_strings if o.startswith("--")]
            return longs[0] if longs else short
    return short


def apply_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--config FILE``: a JSON object whose keys are long flag names (``"resource-group": "rg"``,
    ``"use-device-code": true``); flags given on the command line win."""
    if "--config" not in argv and not any(a.startswith("--config=") for a in argv):
        return argv
    rest: list[str] = []
    path = ""
    i = 0
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            path, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--config="):
            path, i = argv[i].split("=", 1)[1], i + 1
            continue
        rest.append(argv[i])
        i += 1
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AgentError(errors.INVALID_ARGUMENTS, f"Cannot read the --config file {path}: {exc}") from exc
    if not isinstance(values, dict):
        raise AgentError(errors.INVALID_ARGUMENTS, f"The --config file {path} must hold a JSON object.")
    given = {a.split("=", 1)[0] for a in rest if a.startswith("--")}
    for key, value in values.items():
        flag = f"--{key}"
        if flag in given:
            continue
        if value is True:
            rest.append(flag)
        elif value not in (False, None):
            rest.append(f"{flag}={value}")
    return rest


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        raw = apply_config_file(parser, raw)
    except AgentError as exc:
        return _fail(exc)
    args = parser.parse_args(normalize_argv(parser, raw))
    if args.command == "version":
        print(f"azcmagent version {__version__}")
        return errors.OK
    handler = COMMANDS.get(args.command)
    if handler is None:
        parser.print_help()
        return errors.INVALID_ARGUMENTS
    try:
        return handler(args)
    except AgentError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return 11


if __name__ == "__main__":
    sys.exit(main())
