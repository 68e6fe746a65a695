"""ARM operations on machine extensions (API-CONTRACT.md §6): writes finish synchronously."""

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
        extension = self.find_extension(machine, extensionName)
        if extension is None:
            raise NotFound(
                f"The Resource '{ids.EXTENSION_TYPE}/{machineName}/{extensionName}' under resource group "
                f"'{group.name}' was not found.",
                code="ResourceNotFound",
            )
        return Response(s.ExtensionOutput(extension).data)


class MachineExtensionCreateOrUpdateApi(ArmOperation):
    """PUT: 200 with the finished extension (``provisioningState: Succeeded``) and no LRO headers; the SDK's
    ``begin_create_or_update`` poller is done at once (API-CONTRACT.md §7 "Finishing immediately")."""

    operation_id = "MachineExtensions_CreateOrUpdate"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/write"

    @extend_schema(request=s.ExtensionPutInput, responses={200: s.ExtensionOutput, **error_responses(403, 404, 409)})
    def put(self, request, subscriptionId, resourceGroupName, machineName, extensionName):
        self.require(authz.WRITE, ids.extension_id(subscriptionId, resourceGroupName, machineName, extensionName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        name = check_name(validation.validate_extension_name, extensionName, "InvalidResourceName")
        data = self.validated(s.ExtensionPutInput, self.json_body())
        result = services.extension_create_or_update(
            machine=machine,
            name=name,
            location=data.get("location"),
            tags=data.get("tags"),
            properties=dict(data.get("properties") or {}),
        )
        return Response(s.ExtensionOutput(selectors.extension_get(machine=machine, name=result.instance.name)).data)


class MachineExtensionUpdateApi(ArmOperation):
    operation_id = "MachineExtensions_Update"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/write"

    @extend_schema(request=s.ExtensionPatchInput, responses={200: s.ExtensionOutput, **error_responses(403, 404)})
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
        data = self.validated(s.ExtensionPatchInput, self.json_body())
        services.extension_update(
            extension=extension, tags=data.get("tags"), properties=dict(data.get("properties") or {})
        )
        return Response(s.ExtensionOutput(selectors.extension_get(machine=machine, name=extension.name)).data)


class MachineExtensionDeleteApi(ArmOperation):
    """200 when deleted, 204 when there was nothing to delete (machine or extension missing)."""

    operation_id = "MachineExtensions_Delete"
    rbac_action = "Microsoft.HybridCompute/machines/extensions/delete"

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Deleted."),
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
        services.extension_delete(extension=extension)
        return Response(status=200)
