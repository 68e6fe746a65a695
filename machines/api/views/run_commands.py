"""ARM operations on machine run commands (``Microsoft.HybridCompute/machines/{m}/runCommands/{name}``), as
``azure-mgmt-hybridcompute``'s ``machine_run_commands`` sends them: PUT (200/201 + ``Azure-AsyncOperation``, the SDK
accepts no 202), GET, LIST, DELETE (202 + ``Azure-AsyncOperation`` while the agent removes the run's files, 204 when
done at once). Scripts and parameters over 256 KiB → 400."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from arcportal.exceptions import NotFound
from machines import selectors, services, validation
from machines.api.serializers.run_commands import RunCommandListOutput, RunCommandOutput, RunCommandPutInput
from machines.api.views.base import EXPAND_PARAMETER, SKIPTOKEN_PARAMETER, ArmOperation, check_name
from machines.api.views.operations import lro_response


def run_command_scope(subscription_id: str, group: str, machine: str, name: str | None = None) -> str:
    """The scope a run command is authorized on: its machine's extensions (``…/machines/{m}/extensions``). Running a
    script is a day-two action like an extension: Owner and Contributor may, Reader may read, the Onboarding role may
    not. (``arcportal.arm.ids`` names no runCommands scope; the RBAC work maps the runCommands actions.)"""
    return ids.extensions_scope(subscription_id, group, machine)


class _RunCommandApi(ArmOperation):
    def find_run_command(self, machine, name: str, machine_name: str, group):
        run_command = selectors.run_command_get(machine=machine, name=name)
        if run_command is None:
            raise NotFound(
                f"The Resource '{ids.MACHINE_TYPE}/{machine_name}/runCommands/{name}' under resource group "
                f"'{group.name}' was not found.",
                code="ResourceNotFound",
            )
        return run_command


class MachineRunCommandListApi(_RunCommandApi):
    operation_id = "MachineRunCommands_List"
    rbac_action = "Microsoft.HybridCompute/machines/runCommands/read"

    @extend_schema(
        responses={200: RunCommandListOutput, **error_responses(403, 404)},
        parameters=[SKIPTOKEN_PARAMETER, EXPAND_PARAMETER],
    )
    def get(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.READ, run_command_scope(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        services.operations_expire(machine=machine)
        runs = selectors.run_command_list(machine=machine)
        return Response(paginate(request, runs, lambda page: RunCommandOutput(page, many=True).data))


class MachineRunCommandGetApi(_RunCommandApi):
    operation_id = "MachineRunCommands_Get"
    rbac_action = "Microsoft.HybridCompute/machines/runCommands/read"

    @extend_schema(responses={200: RunCommandOutput, **error_responses(403, 404)})
    def get(self, request, subscriptionId, resourceGroupName, machineName, runCommandName):
        self.require(authz.READ, run_command_scope(subscriptionId, resourceGroupName, machineName, runCommandName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        services.operations_expire(machine=machine)
        run_command = self.find_run_command(machine, runCommandName, machineName, group)
        return Response(RunCommandOutput(run_command).data)


class MachineRunCommandCreateOrUpdateApi(_RunCommandApi):
    """PUT: 201 (created) or 200 with the run command and the LRO headers; the poller ends when the agent reports."""

    operation_id = "MachineRunCommands_CreateOrUpdate"
    rbac_action = "Microsoft.HybridCompute/machines/runCommands/write"

    @extend_schema(
        request=RunCommandPutInput,
        responses={200: RunCommandOutput, 201: RunCommandOutput, **error_responses(400, 403, 404, 409)},
    )
    def put(self, request, subscriptionId, resourceGroupName, machineName, runCommandName):
        self.require(authz.WRITE, run_command_scope(subscriptionId, resourceGroupName, machineName, runCommandName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_parent_machine(group, machineName)
        name = check_name(validation.validate_extension_name, runCommandName, "InvalidResourceName")
        data = self.validated(RunCommandPutInput, self.script_body())
        result = services.run_command_create_or_update(
            machine=machine,
            name=name,
            location=data.get("location"),
            tags=data.get("tags"),
            properties=data["properties"],
            actor=self.actor[0],
        )
        body = RunCommandOutput(selectors.run_command_get(machine=machine, name=result.instance.name)).data
        status = 201 if result.created else 200
        return lro_response(request, result.operation, location=machine.location, body=body, status=status)


class MachineRunCommandDeleteApi(_RunCommandApi):
    operation_id = "MachineRunCommands_Delete"
    rbac_action = "Microsoft.HybridCompute/machines/runCommands/delete"

    @extend_schema(
        responses={
            202: OpenApiResponse(description="The agent removes the run's files (Azure-AsyncOperation)."),
            204: OpenApiResponse(description="Deleted, or did not exist."),
            **error_responses(403, 404),
        }
    )
    def delete(self, request, subscriptionId, resourceGroupName, machineName, runCommandName):
        self.require(authz.DELETE, run_command_scope(subscriptionId, resourceGroupName, machineName, runCommandName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.find_machine(group, machineName)
        run_command = selectors.run_command_get(machine=machine, name=runCommandName) if machine else None
        if run_command is None:
            return Response(status=204)
        result = services.run_command_delete(run_command=run_command)
        if result.operation is None:
            return Response(status=204)
        return lro_response(request, result.operation, location=machine.location)
