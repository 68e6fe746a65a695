"""``azcmagent connect`` and ``disconnect``: register the machine with a key pair and a certificate, or remove it."""

from __future__ import annotations

import argparse
import contextlib
import os
import uuid
from pathlib import Path

from azcmagent import __version__, config, errors, identity, log, service, sysinfo
from azcmagent.client import Portal, _json, error_code, error_text, json_bytes
from azcmagent.commands.check import check_endpoints
from azcmagent.commands.common import arm_token, portal_settings, proxy_url
from azcmagent.errors import AgentError
from azcmagent.regions import REGIONS, normalize_location
from azcmagent.tags import TagsFormatError, parse_tags

CLOUDS = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")


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
    url, ca_file = portal_settings(args)
    portal = Portal(url=url, tenant_id=args.tenant_id, ca_file=ca_file or None, proxy=proxy_url())

    log.info(
        "Onboarding Machine. It usually takes a few minutes to complete. Sometimes it may take longer depending on "
        "network and server load status."
    )
    if not args.ignore_network_check:
        log.info("Check network connectivity to all endpoints...")
        unreachable = [endpoint for endpoint, ok, _ in check_endpoints(portal) if not ok]
        if unreachable:
            raise AgentError(errors.NETWORK_ERROR, f"Endpoints not reachable: {', '.join(unreachable)}")
        log.info("All endpoints are available... continue onboarding")

    token, auth_type = arm_token(
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
        # The system-assigned identity the portal gave the machine (HIMDS tokens) and its tags (HIMDS metadata).
        "identityPrincipalId": str(identity_of(data).get("principalId") or ""),
        "tags": data.get("tags") if isinstance(data.get("tags"), dict) else tags,
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


def cmd_disconnect(args: argparse.Namespace) -> int:
    paths = config.paths()
    agentconfig = config.read_json(paths.agentconfig)
    if not agentconfig.get("vmId"):
        raise AgentError(errors.DISCONNECT_FAILED, "The machine is not connected: nothing to disconnect.")
    if not args.force_local_only:
        url, ca_file = portal_settings(args, agentconfig)
        tenant = args.tenant_id or agentconfig.get("tenantId", "")
        portal = Portal(url=url, tenant_id=tenant, ca_file=ca_file or None, proxy=proxy_url())
        token, _ = arm_token(
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


def _held_machine_key(paths: config.Paths):
    """The key of a machine this host registered before, if it still has it: ``certs/machine.key`` left by a
    connect that did not finish, else the one ``disconnect --force-local-only`` kept."""
    for path in (paths.key, paths.previous_key):
        try:
            return identity.load_key(path.read_bytes())
        except (OSError, ValueError):
            continue
    return None


def identity_of(machine: dict) -> dict:
    identity_block = machine.get("identity")
    return identity_block if isinstance(identity_block, dict) else {}
