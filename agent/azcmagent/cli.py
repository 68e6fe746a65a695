"""Command line of the agent: ``azcmagent connect|disconnect|show|check|config|logs|version|service``.

Output follows azcmagent: logrus-style lines, ``Exit Code: AZCM00NN: …`` on failure, and the documented process exit
codes (ARC-REFERENCE.md §2.7).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azcmagent import __version__, config, errors, identity, log, service, sysinfo
from azcmagent.client import Portal, _json, error_code, error_text, json_bytes
from azcmagent.errors import AgentError
from azcmagent.regions import REGIONS, normalize_location
from azcmagent.tags import TagsFormatError, parse_tags

CLOUDS = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")
OFFLINE_AFTER = timedelta(minutes=25)


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

    svc = sub.add_parser("service", help="Run the agent service (himds)")
    svc_sub = svc.add_subparsers(dest="service_command", parser_class=ArgumentParser)
    svc_sub.add_parser("run")
    svc_sub.add_parser("start")
    svc_sub.add_parser("stop")
    return parser


# --- shared ----------------------------------------------------------------------------------------------------


def _portal_settings(args: argparse.Namespace, agentconfig: dict[str, Any] | None = None) -> tuple[str, str]:
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


def _proxy() -> str | None:
    return config.local_config().get("proxy.url") or config.install_config().get("proxy") or None


def _token(args: argparse.Namespace, portal: Portal, *, context: dict[str, str]) -> tuple[str, str]:
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


def _fail(exc: AgentError) -> int:
    log.error(exc.detail)
    log.info(f"Exit Code: {exc.azcm}: {exc.title}")
    log.fatal(exc.detail)
    return exc.exit_code


# --- connect ---------------------------------------------------------------------------------------------------


def cmd_connect(args: argparse.Namespace) -> int:
    paths = config.paths()
    existing = config.read_json(paths.agentconfig)
    if existing.get("vmId") and existing.get("certificateThumbprint"):
        raise AgentError(
            errors.ALREADY_CONNECTED,
            f"This machine is already connected as {existing.get('resourceName')} (VM Id {existing['vmId']}). Run "
            "'azcmagent disconnect' first.",
        )
    missing = [
        flag
        for flag, value in (
            ("--resource-group", args.resource_group),
            ("--location", args.location),
            ("--subscription-id", args.subscription_id),
            ("--tenant-id", args.tenant_id),
        )
        if not value
    ]
    if missing:
        raise AgentError(errors.INVALID_ARGUMENTS, f"Missing required parameter(s): {', '.join(missing)}.")
    if args.cloud not in CLOUDS:
        raise AgentError(errors.INVALID_ARGUMENTS, f"--cloud must be one of {', '.join(CLOUDS)}.")
    location = normalize_location(args.location)
    if location not in REGIONS:
        raise AgentError(errors.UNKNOWN_REGION, f"The region '{args.location}' is not supported by Azure Arc.")
    try:
        tags = parse_tags(args.tags) if args.tags else {}
    except TagsFormatError as exc:
        raise AgentError(errors.INVALID_ARGUMENTS, str(exc)) from exc
    name = args.resource_name or sysinfo.default_resource_name()
    if not sysinfo.valid_resource_name(name):
        raise AgentError(
            errors.RESOURCE_NAME,
            f"'{name}' can't be a resource name: use --resource-name with letters, digits, hyphens and underscores, "
            "not ending in a hyphen or underscore.",
        )
    correlation_id = args.correlation_id or str(uuid.uuid4())
    url, ca_file = _portal_settings(args)
    portal = Portal(url=url, tenant_id=args.tenant_id, ca_file=ca_file or None, proxy=_proxy())

    log.info(
        "Onboarding Machine. It usually takes a few minutes to complete. Sometimes it may take longer depending on "
        "network and server load status."
    )
    if not args.ignore_network_check:
        log.info("Check network connectivity to all endpoints...")
        unreachable = [endpoint for endpoint, ok, _ in _check_endpoints(portal) if not ok]
        if unreachable:
            raise AgentError(errors.NETWORK_ERROR, f"Endpoints not reachable: {', '.join(unreachable)}")
        log.info("All endpoints are available... continue onboarding")

    token, auth_type = _token(
        args,
        portal,
        context={"machine_name": name, "resource_group": args.resource_group, "subscription_id": args.subscription_id},
    )

    vm_id = str(uuid.uuid4())
    vm_uuid = sysinfo.vm_uuid()
    key = identity.new_key()
    facts = sysinfo.facts(__version__)
    properties = {
        "vmId": vm_id,
        "vmUuid": vm_uuid,
        "clientPublicKey": identity.public_key_b64(key),
        "osProfile": {"computerName": facts["computerName"]},
        **{k: v for k, v in facts.items() if k not in ("fqdn", "computerName")},
    }
    body = {"location": location, "tags": tags, "identity": {"type": "SystemAssigned"}, "properties": properties}
    machine_path = Portal.machine_path(args.subscription_id, args.resource_group, name)
    held = _held_machine_key(paths)
    proof = {}
    if held is not None:  # this host registered a machine before: prove it holds that key, to re-attach it
        proof[identity.KEY_PROOF_HEADER] = identity.key_proof(
            held, method="PUT", path=machine_path, body=json_bytes(body)
        )
    response = portal.arm("PUT", machine_path, token, body, correlation_id=correlation_id, headers=proof)
    data = _json(response)
    if response.status_code not in (200, 201):
        code = error_code(data)
        detail = (
            f"Failed to AzcmagentConnect ARM resource Message: {error_text(data, response)} "
            f"Code: {code} httpStatusCode:{response.status_code}"
        )
        if response.status_code == 409 and code in ("ResourceExists", "Conflict"):
            raise AgentError(errors.RESOURCE_EXISTS, detail)
        if response.status_code == 401:
            raise AgentError(errors.TOKEN_FAILED, detail)
        if code in ("LocationNotAvailableForResourceType", "InvalidLocation", "LocationRequired"):
            raise AgentError(errors.UNKNOWN_REGION, detail)
        raise AgentError(errors.CREATE_FAILED, detail)
    log.info("ARM Resource Creation Successful")

    paths.root.mkdir(parents=True, exist_ok=True)
    config.write_private(paths.key, identity.key_pem(key))
    if ca_file:
        # Keep our own copy: the onboarding script's CA file lives in a temporary directory.
        config.write_text(paths.portal_ca, Path(ca_file).read_text())
    log.info("Get MSI Certificate", vmId=vm_id)
    issued = portal.certificate(vm_id=vm_id, token=token, csr=identity.csr_pem(key, vm_id=vm_id))
    certificate = issued["certificate"].encode()
    thumbprint = identity.certificate_thumbprint(certificate)
    config.write_private(paths.certificate, certificate)
    agentconfig = {
        "tenantId": args.tenant_id,
        "subscriptionId": args.subscription_id,
        "resourceGroup": args.resource_group,
        "resourceName": name,
        "resourcename": name,
        "location": location,
        "vmId": vm_id,
        "vmUuid": vm_uuid,
        "correlationId": correlation_id,
        "cloud": args.cloud,
        "authType": auth_type,
        "portalUrl": url,
        "caFile": str(paths.portal_ca) if ca_file else "",
        "certificateThumbprint": thumbprint,
        "certificateNotAfter": issued.get("notAfter", ""),
        "resourceId": data.get("id") or machine_path,
        "connectedAt": service.now_iso(),
    }
    config.write_json(paths.agentconfig, agentconfig)
    with contextlib.suppress(FileNotFoundError):
        paths.previous_key.unlink()
    log.info("Successfully Onboarded Resource to Azure", VM_Id=vm_id)

    beat = service.send_heartbeat()
    if beat.ok:
        log.info("First heartbeat sent", status=beat.message)
    else:
        log.warning(f"The first heartbeat failed: {beat.message}")
    if os.environ.get("AZCMAGENT_NO_SERVICE") != "1":
        pid = service.start_detached()
        log.info("Agent service (himds) started", pid=pid)
    return errors.OK


def _held_machine_key(paths: config.Paths):
    """The key of a machine this host registered before, if it still has it: ``certs/machine.key`` left by a
    connect that did not finish, else the one ``disconnect --force-local-only`` kept."""
    for path in (paths.key, paths.previous_key):
        try:
            return identity.load_key(path.read_bytes())
        except (OSError, ValueError):
            continue
    return None


# --- disconnect ------------------------------------------------------------------------------------------------


def cmd_disconnect(args: argparse.Namespace) -> int:
    paths = config.paths()
    agentconfig = config.read_json(paths.agentconfig)
    if not agentconfig.get("vmId"):
        raise AgentError(errors.DISCONNECT_FAILED, "The machine is not connected: nothing to disconnect.")
    if not args.force_local_only:
        url, ca_file = _portal_settings(args, agentconfig)
        tenant = args.tenant_id or agentconfig.get("tenantId", "")
        portal = Portal(url=url, tenant_id=tenant, ca_file=ca_file or None, proxy=_proxy())
        token, _ = _token(
            args,
            portal,
            context={
                "machine_name": agentconfig.get("resourceName", ""),
                "resource_group": agentconfig.get("resourceGroup", ""),
                "subscription_id": agentconfig.get("subscriptionId", ""),
            },
        )
        path = Portal.machine_path(
            agentconfig["subscriptionId"], agentconfig["resourceGroup"], agentconfig["resourceName"]
        )
        response = portal.arm("DELETE", path, token)
        if response.status_code not in (200, 202, 204, 404):
            raise AgentError(
                errors.DELETE_FAILED,
                f"Failed to delete the ARM resource: {error_text(_json(response), response)} "
                f"httpStatusCode:{response.status_code}",
            )
        log.info("Successfully deleted the resource from Azure", resourceId=agentconfig.get("resourceId", path))
    service.stop()
    if args.force_local_only and paths.key.exists():
        # The machine stays registered with this key: keep it, so 'connect' here can prove it and re-attach.
        paths.key.replace(paths.previous_key)
    for path in (paths.agentconfig, paths.key, paths.certificate, paths.state):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if not args.force_local_only:
        with contextlib.suppress(FileNotFoundError):
            paths.previous_key.unlink()
    log.info("Successfully disconnected and cleaned up the local configuration", VM_Id=agentconfig["vmId"])
    return errors.OK


# --- show ------------------------------------------------------------------------------------------------------


def agent_status(agentconfig: dict[str, Any], state: dict[str, Any], *, now: datetime) -> str:
    """Connected while the last successful heartbeat is recent; Expired/Disconnected when the portal said so."""
    if not agentconfig.get("vmId"):
        return "Disconnected"
    if state.get("status") in ("Expired", "Disconnected") and state.get("errorCode"):
        return state["status"]
    last = state.get("lastHeartbeat")
    if not last:
        return "Disconnected"
    beat = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return "Connected" if now - beat <= OFFLINE_AFTER else "Disconnected"


def show_fields() -> list[tuple[str, str, str]]:
    paths = config.paths()
    agentconfig = config.read_json(paths.agentconfig)
    state = config.read_json(paths.state)
    local = config.local_config()
    facts = sysinfo.facts(__version__)
    detected = facts["detectedProperties"]
    connected = bool(agentconfig.get("vmId"))
    a = agentconfig if connected else {}
    portal_page = ""
    if connected:
        portal_page = f"{a.get('portalUrl', '')}/portal{a.get('resourceId', '')}"
    services_state = "running" if service.running_pid() else "stopped"
    return [
        ("Resource Name", "resourceName", a.get("resourceName", "")),
        ("Resource Group Name", "resourceGroup", a.get("resourceGroup", "")),
        ("Resource Namespace", "resourceNamespace", "Microsoft.HybridCompute" if connected else ""),
        ("Resource Id", "resourceId", a.get("resourceId", "")),
        ("Subscription ID", "subscriptionId", a.get("subscriptionId", "")),
        ("Tenant ID", "tenantId", a.get("tenantId", "")),
        ("VM ID", "vmId", a.get("vmId", "")),
        ("Correlation ID", "correlationId", a.get("correlationId", "")),
        ("VM UUID", "vmUuid", a.get("vmUuid", "")),
        ("Location", "location", a.get("location", "")),
        ("Cloud", "cloud", a.get("cloud", "")),
        ("Identity Key Store", "identityKeyStore", "Default"),
        ("Certificate Thumbprint", "certificateThumbprint", a.get("certificateThumbprint", "")),
        ("Agent Version", "agentVersion", __version__),
        ("Agent Logfile", "agentLogfile", str(paths.himds_log)),
        ("Agent Status", "status", agent_status(agentconfig, state, now=datetime.now(UTC))),
        ("Agent Last Heartbeat", "lastHeartbeat", state.get("lastHeartbeat", "") if connected else ""),
        ("Agent Error Code", "errorCode", state.get("errorCode", "") if connected else ""),
        ("Agent Error Details", "errorDetails", state.get("lastError", "") if connected else ""),
        ("Agent Error Timestamp", "errorTimestamp", state.get("lastErrorAt", "") if connected else ""),
        ("Using HTTPS Proxy", "httpsProxy", local.get("proxy.url", "")),
        ("Proxy Bypass List", "proxyBypass", ",".join(local.get("proxy.bypass", []))),
        ("Cloud Provider", "cloudProvider", str(detected.get("cloudprovider", "N/A"))),
        ("Manufacturer", "manufacturer", str(detected.get("manufacturer", ""))),
        ("Model", "model", str(detected.get("model", ""))),
        ("Agent Service (himds)", "himdsStatus", services_state),
        ("Portal Page", "portalPage", portal_page),
    ]


def cmd_show(args: argparse.Namespace) -> int:
    fields = show_fields()
    if args.properties:
        wanted = {p.lower() for p in args.properties}
        fields = [f for f in fields if f[0].lower() in wanted or f[1].lower() in wanted]
    if args.json:
        print(json.dumps({key: value for _, key, value in fields}, indent=2))
    else:
        for label, _, value in fields:
            print(f"{label:<40}: {value}")
    return errors.OK


# --- check -----------------------------------------------------------------------------------------------------


def _check_endpoints(portal: Portal) -> list[tuple[str, bool, str]]:
    results = []
    for path in ("/healthz", f"/{portal.tenant_id}/v2.0/.well-known/openid-configuration", "/downloads/ca.pem"):
        endpoint = f"{portal.url}{path}"
        try:
            with portal.http() as client:
                response = client.get(path)
            results.append((endpoint, response.status_code < 500, f"HTTP {response.status_code}"))
        except Exception as exc:  # every failure is a reachability result
            results.append((endpoint, False, exc.__class__.__name__))
    return results


def cmd_check(args: argparse.Namespace) -> int:
    agentconfig = config.read_json(config.paths().agentconfig)
    url, ca_file = _portal_settings(args, agentconfig)
    portal = Portal(url=url, tenant_id=agentconfig.get("tenantId", "common"), ca_file=ca_file or None, proxy=_proxy())
    results = _check_endpoints(portal)
    proxy = portal.proxy or ""
    if args.json:
        print(json.dumps([{"endpoint": e, "reachable": ok, "detail": d, "proxy": proxy} for e, ok, d in results]))
    else:
        print(f"{'Endpoint':<80} {'Reachable':<10} {'Proxy':<10} Detail")
        for endpoint, ok, detail in results:
            print(f"{endpoint:<80} {str(ok).lower():<10} {'set' if proxy else 'not set':<10} {detail}")
    return errors.OK if all(ok for _, ok, _ in results) else errors.NETWORK_ERROR


# --- config ----------------------------------------------------------------------------------------------------


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
            print(f"  {key:<52}: {_display(values[key])}")
        return errors.OK
    if args.key not in config.LOCAL_DEFAULTS:
        raise AgentError(errors.INVALID_ARGUMENTS, f"Unknown configuration property {args.key!r}.")
    if command == "get":
        print(f"{args.key} : {_display(values[args.key])}")
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
    print(f"Config property {args.key} set to value {_display(value)}")
    return errors.OK


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]" if value else "[]"
    return str(value)


# --- logs, version, service ------------------------------------------------------------------------------------


def cmd_logs(args: argparse.Namespace) -> int:
    paths = config.paths()
    stamp = datetime.now(UTC).strftime("%y%m%dT%H%M%S")
    output = Path(args.output or f"azcmagent-{stamp}-{socket.gethostname()}.zip")
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        if paths.logs.exists():
            for file in sorted(paths.logs.iterdir()):
                if file.is_file():
                    archive.write(file, f"log/{file.name}")
        for file in (paths.agentconfig, paths.localconfig, paths.state):
            if file.exists():
                archive.write(file, file.name)
        archive.writestr("show.txt", "\n".join(f"{label:<40}: {value}" for label, _, value in show_fields()))
    print(f"Logs collected in {output.resolve()}")
    return errors.OK


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


COMMANDS = {
    "connect": cmd_connect,
    "disconnect": cmd_disconnect,
    "show": cmd_show,
    "check": cmd_check,
    "config": cmd_config,
    "logs": cmd_logs,
    "service": cmd_service,
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
