"""What several commands share: where the portal is, the proxy setting, and the ARM sign-in."""

from __future__ import annotations

import argparse
import os
from typing import Any

from azcmagent import config, errors, log
from azcmagent.client import Portal
from azcmagent.errors import AgentError


def portal_settings(args: argparse.Namespace, agentconfig: dict[str, Any] | None = None) -> tuple[str, str]:
    """``(portal URL, CA file)``: the command line, then the environment, then agentconfig, then the installer."""
    installed = config.install_config()
    agentconfig = agentconfig or {}
    url = (
        getattr(args, "portal_url", "")
        or os.environ.get("AZCMAGENT_PORTAL_URL", "")
        or agentconfig.get("portalUrl", "")
        or installed.get("portalUrl", "")
    )
    ca = (
        getattr(args, "ca_file", "")
        or os.environ.get("AZCMAGENT_CA_FILE", "")
        or agentconfig.get("caFile", "")
        or installed.get("caFile", "")
    )
    if not url:
        raise AgentError(
            errors.INVALID_ARGUMENTS,
            "Where is the portal? Pass --portal-url, set AZCMAGENT_PORTAL_URL, or install with the portal's installer.",
        )
    if not url.startswith("https://"):
        raise AgentError(errors.INVALID_ARGUMENTS, f"The portal URL must be https:// (got {url}).")
    return url.rstrip("/"), ca


def proxy_url() -> str | None:
    return config.local_config().get("proxy.url") or config.install_config().get("proxy") or None


def arm_token(args: argparse.Namespace, portal: Portal, *, context: dict[str, str]) -> tuple[str, str]:
    """An ARM access token and how it was obtained ("principal", "token", "device")."""
    if args.access_token:
        return args.access_token, "token"
    if args.service_principal_id or args.service_principal_secret:
        if not (args.service_principal_id and args.service_principal_secret):
            raise AgentError(
                errors.INVALID_ARGUMENTS, "--service-principal-id and --service-principal-secret go together."
            )
        log.info("Using service principal for authentication", appId=args.service_principal_id)
        return portal.token_client_credentials(args.service_principal_id, args.service_principal_secret), "principal"
    flow = portal.device_code_start(context=context)
    log.info(flow.get("message") or f"Enter the code {flow['user_code']} at {flow['verification_uri']}")
    return portal.device_code_wait(flow), "device"
