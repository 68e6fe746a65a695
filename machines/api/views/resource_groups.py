"""ARM operations on resource groups (API-CONTRACT.md §4)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids, odata
from arcportal.arm.errors import ArmError
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from machines import selectors, services, validation
from machines.api import serializers as s
from machines.api.views.base import SKIPTOKEN_PARAMETER, ArmOperation, check_name
from machines.api.views.subscriptions import visible_subscription


def group_filter(text: str | None) -> odata.ResourceFilter | None:
    """ARM filters resource groups by tag only (``az group list --tag k=v``); other filters are a 400."""
    try:
        wanted = odata.parse_resource_filter(text)
        if wanted == odata.ResourceFilter():
            return None
        if any(getattr(wanted, name) is not None for name in odata.NON_TAG_FIELDS):
            raise odata.FilterError(
                f"The $filter '{text}' is not supported for resource groups: use tagName eq '…' [and tagValue eq '…']."
            )
    except odata.FilterError as exc:
        raise ArmError(str(exc), code="InvalidFilterInQueryString", status=400, target="$filter") from exc
    return wanted


class ResourceGroupListApi(ArmOperation):
    operation_id = "ResourceGroups_List"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/read"

    @extend_schema(
        responses={200: s.ResourceGroupListOutput, **error_responses(403, 404)},
        parameters=[
            SKIPTOKEN_PARAMETER,
            OpenApiParameter("$top", int, OpenApiParameter.QUERY, description="At most this many groups."),
            OpenApiParameter(
                "$filter", str, OpenApiParameter.QUERY, description="tagName eq '…' [and tagValue eq '…']"
            ),
        ],
    )
    def get(self, request, subscriptionId):
        if not visible_subscription(request.user, subscriptionId):
            self.require(authz.READ, ids.subscription_id(subscriptionId))
        wanted = group_filter(request.GET.get("$filter"))
        subscription = self.get_subscription(subscriptionId)
        groups = selectors.resource_group_list(subscription=subscription).order_by("name", "pk")
        if wanted is not None:
            groups = [g for g in groups if odata.tags_match(wanted, g.tags or {})]
        if not authz.can(request.user, authz.READ, ids.subscription_id(subscriptionId)):
            groups = [
                g for g in groups if authz.can(request.user, authz.READ, ids.resource_group_id(subscriptionId, g.name))
            ]
        return Response(paginate(request, groups, lambda page: s.ResourceGroupOutput(page, many=True).data))


class ResourceGroupGetApi(ArmOperation):
    operation_id = "ResourceGroups_Get"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/read"

    @extend_schema(responses={200: s.ResourceGroupOutput, **error_responses(403, 404)})
    def get(self, request, subscriptionId, resourceGroupName):
        self.require(authz.READ, ids.resource_group_id(subscriptionId, resourceGroupName))
        return Response(s.ResourceGroupOutput(self.get_resource_group(subscriptionId, resourceGroupName)).data)


class ResourceGroupCheckExistenceApi(ArmOperation):
    """HEAD: 204 when the group exists, 404 when not, never 200 (``check_existence``; API-CONTRACT.md §4, §8.1)."""

    operation_id = "ResourceGroups_CheckExistence"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/read"

    @extend_schema(
        responses={
            204: OpenApiResponse(description="The resource group exists."),
            404: OpenApiResponse(description="The resource group does not exist."),
            **error_responses(403),
        }
    )
    def head(self, request, subscriptionId, resourceGroupName):
        self.require(authz.READ, ids.resource_group_id(subscriptionId, resourceGroupName))
        exists = self.find_resource_group(subscriptionId, resourceGroupName) is not None
        return Response(status=204 if exists else 404)


class ResourceGroupCreateOrUpdateApi(ArmOperation):
    operation_id = "ResourceGroups_CreateOrUpdate"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/write"

    @extend_schema(
        request=s.ResourceGroupPutInput,
        responses={200: s.ResourceGroupOutput, 201: s.ResourceGroupOutput, **error_responses(403, 404, 409)},
    )
    def put(self, request, subscriptionId, resourceGroupName):
        self.require(authz.WRITE, ids.resource_group_id(subscriptionId, resourceGroupName))
        subscription = self.get_subscription(subscriptionId)
        name = check_name(validation.validate_resource_group_name, resourceGroupName, "InvalidResourceGroup")
        data = self.validated(s.ResourceGroupPutInput, self.json_body())
        result = services.resource_group_create_or_update(
            subscription=subscription,
            name=name,
            location=data["location"],
            tags=data.get("tags") or {},
            managed_by=data.get("managedBy") or "",
        )
        group = selectors.resource_group_get(subscription=subscription, name=result.instance.name)
        return Response(s.ResourceGroupOutput(group).data, status=201 if result.created else 200)


class ResourceGroupUpdateApi(ArmOperation):
    operation_id = "ResourceGroups_Update"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/write"

    @extend_schema(
        request=s.ResourceGroupPatchInput, responses={200: s.ResourceGroupOutput, **error_responses(403, 404)}
    )
    def patch(self, request, subscriptionId, resourceGroupName):
        self.require(authz.WRITE, ids.resource_group_id(subscriptionId, resourceGroupName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        data = self.validated(s.ResourceGroupPatchInput, self.json_body())
        if "tags" in data:
            group = services.resource_group_update_tags(resource_group=group, tags=data["tags"])
        return Response(s.ResourceGroupOutput(group).data)


class ResourceGroupDeleteApi(ArmOperation):
    """200 when done (the SDK's ``begin_delete`` raises on 204); machines and extensions go with the group."""

    operation_id = "ResourceGroups_Delete"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/delete"

    @extend_schema(
        responses={200: OpenApiResponse(description="Deleted, with everything in it."), **error_responses(403, 404)},
        parameters=[OpenApiParameter("forceDeletionTypes", str, OpenApiParameter.QUERY, description="Ignored.")],
    )
    def delete(self, request, subscriptionId, resourceGroupName):
        self.require(authz.DELETE, ids.resource_group_id(subscriptionId, resourceGroupName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        actor, actor_type = self.actor
        services.resource_group_delete(resource_group=group, actor=actor, actor_type=actor_type)
        return Response(status=200)
