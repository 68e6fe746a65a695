"""ARM operations on subscriptions (API-CONTRACT.md §4)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from machines import selectors
from machines.api import serializers as s
from machines.api.views.base import SKIPTOKEN_PARAMETER, ArmOperation


def visible_subscription(principal, subscription_id: str) -> bool:
    """A subscription is visible to whoever may read it or holds a role inside it (as in Azure)."""
    scope = ids.subscription_id(subscription_id)
    return authz.can(principal, authz.READ, scope) or authz.holds_role_within(principal, scope)


class SubscriptionListApi(ArmOperation):
    operation_id = "Subscriptions_List"
    rbac_action = "Microsoft.Resources/subscriptions/read"

    @extend_schema(responses={200: s.SubscriptionListOutput, **error_responses()}, parameters=[SKIPTOKEN_PARAMETER])
    def get(self, request):
        visible = [
            sub for sub in selectors.subscription_list() if visible_subscription(request.user, str(sub.subscription_id))
        ]
        return Response(paginate(request, visible, lambda page: s.SubscriptionOutput(page, many=True).data))


class SubscriptionGetApi(ArmOperation):
    operation_id = "Subscriptions_Get"
    rbac_action = "Microsoft.Resources/subscriptions/read"

    @extend_schema(responses={200: s.SubscriptionOutput, **error_responses(403, 404)})
    def get(self, request, subscriptionId):
        if not visible_subscription(request.user, subscriptionId):
            self.require(authz.READ, ids.subscription_id(subscriptionId))
        return Response(s.SubscriptionOutput(self.get_subscription(subscriptionId)).data)
