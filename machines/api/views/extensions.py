"""ARM operations on machine extensions (API-CONTRACT.md §6). Writes are carried out by the machine's agent: PUT,
PATCH and DELETE answer 202 with ``Azure-AsyncOperation`` (``machines.api.views.operations``), which ends when the
agent reports, after ``ARC_EXTENSION_TIMEOUT_SECONDS`` (Failed), or at once when the machine is not Connected
(Failed). Reads apply the deadline first, so a resource never shows an operation that has run out."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from arcportal.exceptions import NotFound
from machines import selectors, services, validation
from machines.api import serializers as s
from machines.api.views.base import EXPAND_PARAMETER, SKIPTOKEN_PARAMETER, ArmOperation, check_name
from machines.api.views.operations import lro_response


class MachineExtensionListApi(ArmOperation):
    operation_id = "MachineExtensions_List"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/read"

    @extend_schema(
        responses={200: s.ExtensionListOutput, **error_responses(403, 404)},
        parameters=[SKIPTOKEN_PARAMETER, EXPAND_PARAMETER],
    )
    def get(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.READ, ids.extensions_scope(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        services.operations_expire(machine=machine)
        extensions = selectors.extension_list(machine=machine)
        return Response(paginate(request, extensions, lambda page: s.ExtensionOutput(page, many=True).data))


class MachineExtensionGetApi(ArmOperation):
    operation_id = "MachineExtensions_Get"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/read"

    @extend_schema(responses={200: s.ExtensionOutput, **error_responses(403, 404)}, parameters=[EXPAND_PARAMETER])
    def get(self, request, subscriptionId, resourceGroupName, machineName, extensionName):
        self.require(authz.READ, ids.extension_id(subscriptionId, resourceGroupName, machineName, extensionName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        services.operations_expire(machine=machine)
        extension = self.find_extension(machine, extensionName)
        if extension is None:
            raise NotFound(
                f"The Resource '{ids.EXTENSION_TYPE}/{machineName}/{extensionName}' under resource group "
                f"'{group.name}' was not found.",
                code="ResourceNotFound",
            )
        return Response(s.ExtensionOutput(extension).data)


class MachineExtensionCreateOrUpdateApi(ArmOperation):
    """PUT: 202 with the extension (``provisioningState: Creating|Updating``, or ``Failed`` at once when the machine
    is not Connected) and the LRO headers; the SDK's poller follows ``Azure-AsyncOperation``."""

    operation_id = "MachineExtensions_CreateOrUpdate"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/write"

    @extend_schema(request=s.ExtensionPutInput, responses={202: s.ExtensionOutput, **error_responses(403, 404, 409)})
    def put(self, request, subscriptionId, resourceGroupName, machineName, extensionName):
        self.require(authz.WRITE, ids.extension_id(subscriptionId, resourceGroupName, machineName, extensionName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        name = check_name(validation.validate_extension_name, extensionName, "InvalidResourceName")
        data = self.validated(s.ExtensionPutInput, self.script_body())
        result = services.extension_create_or_update(
            machine=machine,
            name=name,
            location=data.get("location"),
            tags=data.get("tags"),
            properties=dict(data.get("properties") or {}),
        )
        body = s.ExtensionOutput(selectors.extension_get(machine=machine, name=result.instance.name)).data
        return lro_response(request, result.operation, location=machine.location, body=body)


class MachineExtensionUpdateApi(ArmOperation):
    operation_id = "MachineExtensions_Update"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/write"

    @extend_schema(request=s.ExtensionPatchInput, responses={202: s.ExtensionOutput, **error_responses(403, 404)})
    def patch(self, request, subscriptionId, resourceGroupName, machineName, extensionName):
        self.require(authz.WRITE, ids.extension_id(subscriptionId, resourceGroupName, machineName, extensionName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        extension = self.find_extension(machine, extensionName)
        if extension is None:
            raise NotFound(
                f"The Resource '{ids.EXTENSION_TYPE}/{machineName}/{extensionName}' under resource group "
                f"'{group.name}' was not found.",
                code="ResourceNotFound",
            )
        data = self.validated(s.ExtensionPatchInput, self.script_body())
        result = services.extension_update(
            extension=extension, tags=data.get("tags"), properties=dict(data.get("properties") or {})
        )
        body = s.ExtensionOutput(selectors.extension_get(machine=machine, name=extension.name)).data
        return lro_response(request, result.operation, location=machine.location, body=body)


class MachineExtensionDeleteApi(ArmOperation):
    """202 + LRO headers while the agent uninstalls; 200 when deleted at once (no agent was ever given it); 204 when
    there was nothing to delete (machine or extension missing)."""

    operation_id = "MachineExtensions_Delete"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/delete"

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Deleted."),
            202: OpenApiResponse(description="The agent uninstalls it (Azure-AsyncOperation)."),
            204: OpenApiResponse(description="Did not exist."),
            **error_responses(403, 404),
        }
    )
    def delete(self, request, subscriptionId, resourceGroupName, machineName, extensionName):
        self.require(authz.DELETE, ids.extension_id(subscriptionId, resourceGroupName, machineName, extensionName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.find_machine(group, machineName)
        extension = self.find_extension(machine, extensionName) if machine else None
        if extension is None:
            return Response(status=204)
        result = services.extension_delete(extension=extension)
        if result.operation is None:
            return Response(status=200)
        return lro_response(request, result.operation, location=machine.location)
