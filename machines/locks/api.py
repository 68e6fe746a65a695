"""ARM operations of ``Microsoft.Authorization/locks`` as ``azure-mgmt-resource-locks``' ``ManagementLockClient``
sends them: at subscription, resource-group and resource (machine) level, and ``…_by_scope`` (the scope arrives
percent-encoded, hence a leading ``//`` once decoded)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import ArmAutoSchema, error_responses
from arcportal.arm.views import ArmApiView
from machines.locks import selectors, services
from machines.locks.models import ManagementLock
from machines.locks.rules import LOCK_TYPE

SCOPE_PARAMETER = OpenApiParameter(
    "scope",
    str,
    OpenApiParameter.PATH,
    description="subscriptions/{id}[/resourceGroups/{name}[/providers/Microsoft.HybridCompute/machines/{name}]]",
)
LOCK_NAME_PARAMETER = OpenApiParameter("lockName", str, OpenApiParameter.PATH, description="The lock's name.")


def lock_output(lock: ManagementLock) -> dict[str, Any]:
    return {
        "id": lock.arm_id,
        "name": lock.name,
        "type": LOCK_TYPE,
        "properties": {"level": lock.level, "notes": lock.notes, "owners": list(lock.owners)},
    }


def scope_of(kwargs: dict[str, str]) -> str:
    sub = kwargs["subscriptionId"]
    if "resourceGroupName" not in kwargs:
        return ids.subscription_id(sub)
    if "machineName" not in kwargs:
        return ids.resource_group_id(sub, kwargs["resourceGroupName"])
    return ids.machine_id(sub, kwargs["resourceGroupName"], kwargs["machineName"])


class LockOperation(ArmApiView):
    schema = ArmAutoSchema()

    def resolved_scope(self, kwargs: dict[str, str], action: str) -> str:
        scope = scope_of(kwargs)
        self.require(action, scope)
        canonical = services.lock_scope_resolve(scope=scope)
        self.require(action, canonical)  # on the rows' own spelling too
        return canonical


class ManagementLocksListApi(LockOperation):
    operation_id = "ManagementLocks_ListByScope"
    rbac_action = "Microsoft.Authorization/locks/read"

    @extend_schema(
        responses={200: OpenApiResponse(description="Locks"), **error_responses(400, 403, 404)},
        parameters=[SCOPE_PARAMETER],
    )
    def get(self, request, **kwargs):
        scope = self.resolved_scope(kwargs, authz.READ)
        odata = request.GET.get("$filter", "").strip()
        if odata == "":
            locks = selectors.lock_list(scope=scope)
        elif odata.replace(" ", "") == "atScope()":
            locks = selectors.lock_list_applying(scope=scope)
        else:
            raise ArmError(
                f"The $filter '{odata}' is not supported; use atScope() or no filter.",
                code="InvalidFilter",
                status=400,
                target="$filter",
            )
        return Response(paginate(request, locks, lambda page: [lock_output(lock) for lock in page]))


class ManagementLocksGetApi(LockOperation):
    operation_id = "ManagementLocks_GetByScope"
    rbac_action = "Microsoft.Authorization/locks/read"

    @extend_schema(
        responses={200: OpenApiResponse(description="Lock"), **error_responses(403, 404)},
        parameters=[SCOPE_PARAMETER, LOCK_NAME_PARAMETER],
    )
    def get(self, request, lockName, **kwargs):
        scope = self.resolved_scope(kwargs, authz.READ)
        lock = selectors.lock_get(scope=scope, name=lockName)
        if lock is None:
            raise ArmError(f"The lock '{lockName}' could not be found.", code="LockNotFound", status=404)
        return Response(lock_output(lock))


class ManagementLocksCreateOrUpdateApi(LockOperation):
    """200 when replaced, 201 when created (the SDK accepts both)."""

    operation_id = "ManagementLocks_CreateOrUpdateByScope"
    rbac_action = authz.LOCKS_WRITE

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(description="Lock"), **error_responses(400, 403, 404)},
        parameters=[SCOPE_PARAMETER, LOCK_NAME_PARAMETER],
    )
    def put(self, request, lockName, **kwargs):
        scope = self.resolved_scope(kwargs, authz.LOCKS_WRITE)
        body = self.json_body()
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise ArmError("The lock needs a 'properties' object.", code="InvalidRequestContent", status=400)
        notes = properties.get("notes") or ""
        owners = properties.get("owners") or []
        if not isinstance(owners, list):
            raise ArmError("'properties.owners' must be an array.", code="InvalidRequestContent", status=400)
        result = services.lock_create_or_update(
            scope=scope,
            name=lockName,
            level=properties.get("level"),
            notes=notes,
            owners=owners,
            caller=str(request.user),
        )
        return Response(lock_output(result.instance), status=201 if result.created else 200)


class ManagementLocksDeleteApi(LockOperation):
    """200 when deleted, 204 when there was no such lock."""

    operation_id = "ManagementLocks_DeleteByScope"
    rbac_action = "Microsoft.Authorization/locks/delete"

    @extend_schema(
        responses={200: OpenApiResponse(description="Deleted"), 204: OpenApiResponse(description="None")},
        parameters=[SCOPE_PARAMETER, LOCK_NAME_PARAMETER],
    )
    def delete(self, request, lockName, **kwargs):
        scope = self.resolved_scope(kwargs, authz.LOCKS_WRITE)
        lock = selectors.lock_get(scope=scope, name=lockName)
        if lock is None:
            return Response(status=204)
        services.lock_delete(lock=lock, caller=str(request.user))
        return Response(status=200)
