"""``GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values`` as ``azure-mgmt-monitor``'s
``activity_logs.list(filter=…, select=…)`` sends it: Azure's ``EventData``, newest first, paged with ``nextLink``."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.activity.eventdata import event_data, parse_select
from arcportal.activity.odata import ODataError, parse_filter
from arcportal.activity.resource_ids import filing, fold
from arcportal.activity.selectors import activity_list
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from identity import selectors as identity_selectors
from machines.api.views.base import SKIPTOKEN_PARAMETER, ArmOperation


def _read_scope(subscription_id: str, terms: dict[str, str]) -> str:
    """The narrowest scope the filter names: what the caller must be allowed to read."""
    if "resource_uri" in terms:
        filed = filing(terms["resource_uri"])
        if filed.subscription_id != fold(subscription_id):
            raise ArmError(
                f"The resourceUri '{terms['resource_uri']}' is not in subscription '{subscription_id}'.",
                code="InvalidFilterParameter",
                status=400,
                target="$filter",
            )
        try:
            return ids.normalize(terms["resource_uri"])
        except ValueError:
            if filed.resource_group:
                return ids.resource_group_id(subscription_id, filed.resource_group)
            return ids.subscription_id(subscription_id)
    if "resource_group" in terms:
        return ids.resource_group_id(subscription_id, terms["resource_group"])
    return ids.subscription_id(subscription_id)


class ActivityLogsListApi(ArmOperation):
    operation_id = "ActivityLogs_List"
    rbac_action = "Microsoft.Insights/eventtypes/values/read"

    @extend_schema(
        responses={200: OpenApiResponse(description="EventDataCollection"), **error_responses(400, 403, 404)},
        parameters=[SKIPTOKEN_PARAMETER],
    )
    def get(self, request, subscriptionId):
        try:
            wanted = parse_filter(request.GET.get("$filter"), now=timezone.now())
        except ODataError as exc:
            raise ArmError(exc.message, code=exc.code, status=400, target="$filter") from exc
        try:
            select = parse_select(request.GET.get("$select"))
        except ValueError as exc:
            raise ArmError(str(exc), code="InvalidSelectParameter", status=400, target="$select") from exc
        self.require(authz.READ, _read_scope(subscriptionId, wanted.terms))
        subscription = self.get_subscription(subscriptionId)
        events = activity_list(
            subscription_id=str(subscription.subscription_id), start=wanted.start, end=wanted.end, **wanted.terms
        )
        tenant = identity_selectors.tenant_get()
        tenant_id = str(tenant.tenant_id) if tenant else ""
        return Response(
            paginate(request, events, lambda page: [event_data(e, tenant_id=tenant_id, select=select) for e in page])
        )
