"""ARM asynchronous operations (API-CONTRACT.md §7 "Asynchronous, the Azure way") of extension and run-command
writes, which the agent carries out.

A write answers with ``Azure-AsyncOperation: …/locations/{region}/operationStatus/{id}``, ``Location:
…/operationResults/{id}`` and ``Retry-After: 1``. The status URL answers ``{id, name, status, startTime, endTime?,
error?}``; ``InProgress`` until the agent reports (or the deadline passes: ``Failed``; the machine is deleted:
``Canceled``). The caller must be allowed to read the resource the operation is about; otherwise it does not exist
for them (404).
"""

from __future__ import annotations

from urllib.parse import quote

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm.errors import ArmError
from arcportal.arm.schema import error_responses
from arcportal.arm.views import public_base_url, rfc3339
from machines import selectors, services
from machines.api.views.base import ArmOperation
from machines.models import AsyncOperation

RETRY_AFTER = "1"


def _operations_base(request, operation: AsyncOperation, location: str) -> str:
    return (
        f"{public_base_url(request)}/subscriptions/{quote(operation.subscription_id)}/providers/"
        f"Microsoft.HybridCompute/locations/{quote(location)}"
    )


def lro_response(request, operation: AsyncOperation, *, location: str, body=None, status: int = 202) -> Response:
    """The answer to a write the agent carries out: ``status`` (202, or 200/201 where the SDK accepts only those)
    with the three LRO headers."""
    base = _operations_base(request, operation, location)
    version = quote(request.query_params.get("api-version", ""))
    response = Response(body, status=status)
    response["Azure-AsyncOperation"] = f"{base}/operationStatus/{operation.pk}?api-version={version}"
    response["Location"] = f"{base}/operationResults/{operation.pk}?api-version={version}"
    response["Retry-After"] = RETRY_AFTER
    return response


def operation_body(operation: AsyncOperation, request, location: str) -> dict:
    body = {
        "id": f"{_operations_base(request, operation, location)}/operationStatus/{operation.pk}".removeprefix(
            public_base_url(request)
        ),
        "name": str(operation.pk),
        "status": operation.status,
        "startTime": rfc3339(operation.started_at),
    }
    if operation.ended_at:
        body["endTime"] = rfc3339(operation.ended_at)
    if operation.error:
        body["error"] = {"code": operation.error.get("code", "Failed"), "message": operation.error.get("message", "")}
    return body


def _authz_scope(operation: AsyncOperation) -> str:
    """Extensions are authorized on their id; run commands on their machine's extensions scope (as their views)."""
    if operation.kind == "runCommands":
        return operation.resource_id.rsplit("/runCommands/", 1)[0] + "/extensions"
    return operation.resource_id


class _OperationApi(ArmOperation):
    rbac_action = "Microsoft.HybridCompute/locations/operationstatus/read"

    def find(self, request, subscriptionId: str, operationId: str) -> AsyncOperation:
        operation = selectors.async_operation_get(subscription_id=subscriptionId, operation_id=operationId)
        if operation is None or not authz.can(request.user, authz.READ, _authz_scope(operation)):
            raise ArmError(f"The operation '{operationId}' was not found.", code="OperationNotFound", status=404)
        return services.operation_refresh(operation=operation)


class OperationStatusGetApi(_OperationApi):
    operation_id = "OperationStatus_Get"

    @extend_schema(responses={200: OpenApiResponse(description="The operation's status."), **error_responses(404)})
    def get(self, request, subscriptionId, location, operationId):
        operation = self.find(request, subscriptionId, operationId)
        response = Response(operation_body(operation, request, location))
        if operation.status == "InProgress":
            response["Retry-After"] = RETRY_AFTER
        return response


class OperationResultGetApi(_OperationApi):
    operation_id = "OperationResults_Get"

    @extend_schema(
        responses={
            202: OpenApiResponse(description="Still running."),
            204: OpenApiResponse(description="Done."),
            **error_responses(404),
        }
    )
    def get(self, request, subscriptionId, location, operationId):
        operation = self.find(request, subscriptionId, operationId)
        if operation.status == "InProgress":
            return lro_response(request, operation, location=location)
        if operation.status != "Succeeded":
            error = operation.error or {}
            raise ArmError(error.get("message", "The operation failed."), code=error.get("code", "Failed"), status=400)
        return Response(status=204)
