"""ARM's generic resource list: ``Resources_List`` (``GET /subscriptions/{s}/resources``) and
``Resources_ListByResourceGroup`` (``GET /subscriptions/{s}/resourceGroups/{g}/resources``), as ``az resource list``
calls them: ``$filter`` (``arcportal.arm.odata``: unsupported filters are a 400, never ignored), ``$expand``
(createdTime, changedTime, provisioningState), ``$top`` and ``$skiptoken`` paging.

It lists what the caller may read: machines of the groups whose machines it may read, extensions of the groups it
may read as a whole (so the Onboarding role, which reads machines only, sees no extensions).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.odata import FilterError, parse_resource_expand, parse_resource_filter
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from machines import resource_list, selectors
from machines.api.serializers.generic import GenericResourceListOutput, GenericResourceOutput
from machines.api.views.base import SKIPTOKEN_PARAMETER, ArmOperation
from machines.api.views.subscriptions import visible_subscription

PARAMETERS = [
    SKIPTOKEN_PARAMETER,
    OpenApiParameter("$filter", str, OpenApiParameter.QUERY, description="resourceType/resourceGroup/name/tag …"),
    OpenApiParameter("$expand", str, OpenApiParameter.QUERY, description="createdTime,changedTime,provisioningState"),
    OpenApiParameter("$top", int, OpenApiParameter.QUERY, description="At most this many resources."),
]


class _ResourceList(ArmOperation):
    rbac_action = "Microsoft.Resources/subscriptions/resources/read"

    def query(self):
        try:
            return (
                parse_resource_filter(self.request.GET.get("$filter")),
                parse_resource_expand(self.request.GET.get("$expand")),
            )
        except FilterError as exc:
            raise ArmError(str(exc), code="InvalidFilterInQueryString", status=400, target="$filter") from exc

    def readable_groups(self, subscription):
        """(machine groups, extension groups) the caller may read in; ``None`` = every group of the subscription."""
        principal, sub = self.request.user, str(subscription.subscription_id)
        if authz.can(principal, authz.READ, ids.subscription_id(sub)):
            return None, None
        groups = list(selectors.resource_group_list(subscription=subscription))
        machines = None
        if not authz.can(principal, authz.READ, ids.machines_scope(sub)):
            machines = [g for g in groups if authz.can(principal, authz.READ, ids.machines_scope(sub, g.name))]
        extensions = [g for g in groups if authz.can(principal, authz.READ, ids.resource_group_id(sub, g.name))]
        return machines, extensions

    def respond(self, subscription, group=None):
        wanted, expand = self.query()
        machine_groups, extension_groups = self.readable_groups(subscription)
        rows = resource_list.generic_resource_list(
            subscription=subscription,
            wanted=wanted,
            machine_groups=machine_groups,
            extension_groups=extension_groups,
            resource_group=group,
        )
        context = {**self.output_context(), "expand": expand}
        return Response(
            paginate(self.request, rows, lambda page: GenericResourceOutput(page, many=True, context=context).data)
        )


class ResourceListApi(_ResourceList):
    operation_id = "Resources_List"

    @extend_schema(responses={200: GenericResourceListOutput, **error_responses(400, 403, 404)}, parameters=PARAMETERS)
    def get(self, request, subscriptionId):
        if not visible_subscription(request.user, subscriptionId):
            self.require(authz.READ, ids.subscription_id(subscriptionId))
        return self.respond(self.get_subscription(subscriptionId))


class ResourceListByResourceGroupApi(_ResourceList):
    operation_id = "Resources_ListByResourceGroup"

    @extend_schema(responses={200: GenericResourceListOutput, **error_responses(400, 403, 404)}, parameters=PARAMETERS)
    def get(self, request, subscriptionId, resourceGroupName):
        if not authz.can(request.user, authz.READ, ids.machines_scope(subscriptionId, resourceGroupName)):
            self.require(authz.READ, ids.resource_group_id(subscriptionId, resourceGroupName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        return self.respond(group.subscription, group)
