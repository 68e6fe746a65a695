"""ARM operations on machines (API-CONTRACT.md §5); an agent's registration PUT included."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from machines import keyproof, selectors, services, validation
from machines.api import serializers as s
from machines.api.views.base import EXPAND_PARAMETER, SKIPTOKEN_PARAMETER, ArmOperation, check_name
from machines.keyproof import KeyProof


class MachineListBySubscriptionApi(ArmOperation):
    operation_id = "Machines_ListBySubscription"
    rbac_action = "Microsoft.HybridCompute/machines/read"

    @extend_schema(responses={200: s.MachineListOutput, **error_responses(403, 404)}, parameters=[SKIPTOKEN_PARAMETER])
    def get(self, request, subscriptionId):
        everything = authz.can(request.user, authz.READ, ids.machines_scope(subscriptionId))
        if not everything and not authz.holds_role_within(request.user, ids.subscription_id(subscriptionId)):
            self.require(authz.READ, ids.machines_scope(subscriptionId))
        subscription = self.get_subscription(subscriptionId)
        machines = selectors.machine_list_arm(subscription=subscription)
        if not everything:
            # Only the machines a grant inside the subscription reaches, each checked on its row's own id.
            machines = [m for m in machines if authz.can(request.user, authz.READ, m.arm_id)]
        context = self.output_context()
        return Response(
            paginate(request, machines, lambda page: s.MachineOutput(page, many=True, context=context).data)
        )


class MachineListByResourceGroupApi(ArmOperation):
    operation_id = "Machines_ListByResourceGroup"
    rbac_action = "Microsoft.HybridCompute/machines/read"

    @extend_schema(
        responses={200: s.MachineListOutput, **error_responses(403, 404)},
        parameters=[SKIPTOKEN_PARAMETER, EXPAND_PARAMETER],
    )
    def get(self, request, subscriptionId, resourceGroupName):
        self.require(authz.READ, ids.machines_scope(subscriptionId, resourceGroupName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machines = selectors.machine_list_arm(subscription=group.subscription, resource_group=group)
        context = self.output_context()
        return Response(
            paginate(request, machines, lambda page: s.MachineOutput(page, many=True, context=context).data)
        )


class MachineGetApi(ArmOperation):
    operation_id = "Machines_Get"
    rbac_action = "Microsoft.HybridCompute/machines/read"

    @extend_schema(responses={200: s.MachineOutput, **error_responses(403, 404)}, parameters=[EXPAND_PARAMETER])
    def get(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.READ, ids.machine_id(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        return Response(self.render_machine(self.get_machine(group, machineName)))


def _identity_type(data: dict[str, Any]) -> str | None:
    identity = data.get("identity")
    if identity is None:
        return None
    return "" if identity["type"] == "None" else identity["type"]


class MachineCreateOrUpdateApi(ArmOperation):
    """PUT answers 200 also when it creates (the SDK's plain ``create_or_update`` raises on 201).

    A PUT carrying ``properties.clientPublicKey`` is an agent registering its machine (``azcmagent connect``):
    it needs the ``onboard`` permission too and goes to ``machines.services.machine_register``. Re-registering a
    machine that already has an agent key needs ``X-ArcPortal-Key-Proof``, a JWT signed by that key and bound to
    this request (``machines.keyproof``).
    """

    operation_id = "Machines_CreateOrUpdate"
    rbac_action = "Microsoft.HybridCompute/machines/write"

    @extend_schema(request=s.MachinePutInput, responses={200: s.MachineOutput, **error_responses(403, 404, 409)})
    def put(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.WRITE, ids.machine_id(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        name = check_name(validation.validate_machine_name, machineName, "InvalidResourceName")
        data = self.validated(s.MachinePutInput, self.json_body())
        properties = dict(data.get("properties") or {})
        actor, actor_type = self.actor
        if properties.get("clientPublicKey"):
            self.require(authz.ONBOARD, ids.machine_id(subscriptionId, resourceGroupName, machineName))
            result = services.machine_register(
                resource_group=group,
                name=name,
                location=data["location"],
                properties=properties,
                tags=data.get("tags"),
                correlation_id=request.headers.get("x-ms-correlation-request-id", "")[:64],
                onboarding_method="ServicePrincipal" if actor_type == "Application" else "DeviceCode",
                onboarded_by=actor,
                actor=actor,
                actor_type=actor_type,
                key_proof=KeyProof(
                    token=request.headers.get(keyproof.HEADER, ""),
                    method=request.method,
                    path=request.path,
                    body=request._request.body,
                ),
            )
        else:
            result = services.machine_create_or_update(
                resource_group=group,
                name=name,
                location=data["location"],
                tags=data.get("tags"),
                properties=properties,
                kind=(data["kind"] or "") if "kind" in data else None,
                identity_type=_identity_type(data),
                actor=actor,
                actor_type=actor_type,
            )
        return Response(self.render_machine(self.get_machine(group, result.instance.name)))


class MachineUpdateApi(ArmOperation):
    operation_id = "Machines_Update"
    rbac_action = "Microsoft.HybridCompute/machines/write"

    @extend_schema(request=s.MachinePatchInput, responses={200: s.MachineOutput, **error_responses(403, 404)})
    def patch(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.WRITE, ids.machine_id(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.get_machine(group, machineName)
        data = self.validated(s.MachinePatchInput, self.json_body())
        actor, actor_type = self.actor
        services.machine_update(
            machine=machine,
            tags=data.get("tags"),
            properties=dict(data.get("properties") or {}),
            kind=(data["kind"] or "") if "kind" in data else None,
            identity_type=_identity_type(data),
            actor=actor,
            actor_type=actor_type,
        )
        return Response(self.render_machine(self.get_machine(group, machine.name)))


class MachineDeleteApi(ArmOperation):
    """204 whether or not the machine existed (ARM idempotent delete); its extensions go with it."""

    operation_id = "Machines_Delete"
    rbac_action = "Microsoft.HybridCompute/machines/delete"

    @extend_schema(
        responses={204: OpenApiResponse(description="Deleted, or did not exist."), **error_responses(403, 404)}
    )
    def delete(self, request, subscriptionId, resourceGroupName, machineName):
        self.require(authz.DELETE, ids.machine_id(subscriptionId, resourceGroupName, machineName))
        group = self.get_resource_group(subscriptionId, resourceGroupName)
        machine = self.find_machine(group, machineName)
        if machine is not None:
            actor, actor_type = self.actor
            services.machine_delete(machine=machine, actor=actor, actor_type=actor_type)
        return Response(status=204)
