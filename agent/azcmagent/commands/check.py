"""``azcmagent check``: can this machine reach the portal's endpoints?"""

from __future__ import annotations

import argparse
import json

from azcmagent import config, errors
from azcmagent.client import Portal
from azcmagent.commands.common import portal_settings, proxy_url


def check_endpoints(portal: Portal) -> list[tuple[str, bool, str]]:
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
    url, ca_file = portal_settings(args, agentconfig)
    portal = Portal(
        url=url, tenant_id=agentconfig.get("tenantId", "common"), ca_file=ca_file or None, proxy=proxy_url()
    )
    results = check_endpoints(portal)
    proxy = portal.proxy or ""
    if args.json:
        print(json.dumps([{"endpoint": e, "reachable": ok, "detail": d, "proxy": proxy} for e, ok, d in results]))
    else:
        print(f"{'Endpoint':<80} {'Reachable':<10} {'Proxy':<10} Detail")
        for endpoint, ok, detail in results:
            print(f"{endpoint:<80} {str(ok).lower():<10} {'set' if proxy else 'not set':<10} {detail}")
    return errors.OK if all(ok for _, ok, _ in results) else errors.NETWORK_ERROR
