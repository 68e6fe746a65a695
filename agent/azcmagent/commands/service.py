"""``azcmagent service run|start|stop``: the agent service (himds) in the foreground or in the background."""

from __future__ import annotations

import argparse

from azcmagent import errors, service
from azcmagent.errors import AgentError


def cmd_service(args: argparse.Namespace) -> int:
    if args.service_command == "run":
        return service.run()
    if args.service_command == "start":
        print(f"Agent service started (pid {service.start_detached()})")
        return errors.OK
    if args.service_command == "stop":
        print("Agent service stopped" if service.stop() else "Agent service was not running")
        return errors.OK
    raise AgentError(errors.INVALID_ARGUMENTS, "Use 'azcmagent service run|start|stop'.")
