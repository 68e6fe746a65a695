"""``GET /metadata/endpoints?api-version=…``: this installation as an Azure cloud, for ``az cloud register``.

Azure Resource Manager publishes its clouds' endpoints here; ``az cloud register --endpoint-resource-manager URL``
fetches ``URL/metadata/endpoints?api-version=2022-09-01`` and maps the one cloud object it gets (ARM's field names:
``resourceManager``, ``authentication.loginEndpoint``, ``authentication.audiences``, ``suffixes`` …) to the CLI's
endpoints. Older api-versions (before 2022-09-01) answer the list of all clouds, as ARM does; ours has one.

Every URL is this portal's (``public_base_url``: the https host the client used): it is both the resource manager
and the sign-in authority. The audiences are Azure's management resource under its two names, the ones our tokens
carry and accept (``az login`` asks for ``https://management.core.windows.net//.default``). Services we do not
emulate (Key Vault, storage …) are left out, so the CLI's commands for them fail instead of calling Azure; Microsoft
Graph is named (the portal's ``/graph/``, which serves nothing) only because ``az role`` builds a Graph client before
it runs, even when ``--assignee-object-id`` and ``--fill-principal-name false`` mean it never calls it.
Public (no authentication): it says nothing an anonymous caller could not guess.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from arcportal.arm.errors import ArmError, arm_error_response
from arcportal.arm.versioning import parse_api_version
from arcportal.arm.views import public_base_url

CLOUD_NAME = "ArcPortal"
# The management resource under the names Azure uses; the CLI takes the first as its resource id and login scope.
AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/")
# From this api-version on ARM answers one cloud object (the one serving the request); before it, the list.
SINGLE_CLOUD_SINCE = "2022-09-01"


def cloud_metadata(base_url: str) -> dict[str, Any]:
    """The cloud object: ``base_url`` (``https://host[:port]``, no trailing slash) for ARM, sign-in and portal."""
    return {
        "name": CLOUD_NAME,
        "portal": base_url,
        "resourceManager": f"{base_url}/",
        "authentication": {
            "loginEndpoint": base_url,
            "audiences": list(AUDIENCES),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        # Not served (no Microsoft Graph here): published so the CLI's role commands start, which build a Graph
        # client up front; any call that really needs Graph fails at its token request (docs/cli.md).
        "microsoftGraphResourceId": f"{base_url}/graph/",
        "suffixes": {},
    }


def metadata_endpoints(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "HEAD"):
        return arm_error_response(
            "MethodNotAllowed", f"The method '{request.method}' is not allowed here; use GET.", status=405
        )
    values = request.GET.getlist("api-version")
    try:
        version = parse_api_version(values[-1] if values else None)
    except ArmError as exc:
        return arm_error_response(exc.code, exc.message, status=exc.status, target=exc.target)
    cloud = cloud_metadata(public_base_url(request))
    if version[:10] >= SINGLE_CLOUD_SINCE:
        return JsonResponse(cloud)
    return JsonResponse([cloud], safe=False)
