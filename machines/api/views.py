"""ARM operations on subscriptions, resource groups, machines and machine extensions (API-CONTRACT.md §4–§7).

One APIView per operation, named after its ARM operationId; each one checks permission with ``arcportal.authz.can``
(through ``ArmApiView.require``), validates input with a per-verb serializer, calls one service or selector, and
renders the shared output serializer. Lists leave only through ``arcportal.arm.pagination``, errors only through
``arcportal.arm.errors``. Extension writes finish synchronously (200 with ``provisioningState: Succeeded``, no LRO
headers), so the SDK's pollers complete with no extra request; the agent's progress shows in ``instanceView``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import ArmAutoSchema, error_responses
from arcportal.arm.views import ArmApiView
from arcportal.exceptions import NotFound
from identity import selectors as identity_selectors
from machines import keyproof, selectors, services, validation
from machines.api import serializers as s
from machines.conf import status_thresholds
from machines.keyproof import KeyProof
from machines.models import Machine, ResourceGroup, Subscription

SKIPTOKEN_PARAMETER = OpenApiParameter("$skiptoken", str, OpenApiParameter.QUERY, description="Continuation token.")
EXPAND_PARAMETER = OpenApiParameter("$expand", str, OpenApiParameter.QUERY, description="Accepted and ignored.")


class ArmOperation(ArmApiView):
    schema = ArmAutoSchema()

    def output_context(self) -> dict[str, Any]:
        tenant = identity_selectors.tenant_get()
        principal = self.request.user
        return {
            "now": timezone.now(),
            "thresholds": status_thresholds(),
            "tenant_id": str(tenant.tenant_id) if tenant else "",
            "request": self.request,
            # A machine body's ``resources`` are its extensions (settings included): only for callers who may
            # read them (not the Onboarding role).
            "may_read_extensions": lambda machine: authz.can(principal, authz.READ, machine.extensions_scope),
        }

    def validated(self, serializer_class, data: dict[str, Any]) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    # --- permissions: the URL first, then the rows it resolved to ------------------------------------------------

    def require(self, action: str, scope: str) -> None:
        """403 unless the caller may ``action`` on the URL's ``scope`` (before any lookup, so a caller outside its
        scope learns nothing about what exists), and remember it for ``require_rows``."""
        super().require(action, scope)
        self._required = [*getattr(self, "_required", []), (action, ids.parse(scope))]

    def require_rows(self, **names: str) -> None:
        """Check every permission required so far again, on the id spelled with the names of the rows found
        (``resource_group=``, ``machine=``, ``extension=``). Scope is decided by the rows a request reaches, not
        by the URL's spelling, so a name the database matched differently from ``ids.is_within`` could never
        reach a row outside the caller's scope. The lookups below call it for every row they return."""
        for action, wanted in getattr(self, "_required", []):
            resolved = dataclasses.replace(
                wanted, **{part: name for part, name in names.items() if getattr(wanted, part) is not None}
            )
            if resolved != wanted:
                super().require(action, resolved.to_string())

    # --- lookups: each raises the ARM 404 the contract names, and re-checks permission on the row found ---------

    def get_subscription(self, subscription_id: str) -> Subscription:
        subscription = selectors.subscription_get(subscription_id=subscription_id)
        if subscription is None:
            raise NotFound(f"The subscription '{subscription_id}' could not be found.", code="SubscriptionNotFound")
        return subscription

    def find_resource_group(self, subscription_id: str, name: str) -> ResourceGroup | None:
        subscription = selectors.subscription_get(subscription_id=subscription_id)
        group = selectors.resource_group_get(subscription=subscription, name=name) if subscription else None
        if group is not None:
            self.require_rows(resource_group=group.name)
        return group

    def get_resource_group(self, subscription_id: str, name: str) -> ResourceGroup:
        self.get_subscription(subscription_id)
        group = self.find_resource_group(subscription_id, name)
        if group is None:
            raise NotFound(f"Resource group '{name}' could not be found.", code="ResourceGroupNotFound")
        return group

    def find_machine(self, group: ResourceGroup, name: str) -> Machine | None:
        machine = selectors.machine_get(resource_group=group, name=name)
        if machine is not None:
            self.require_rows(resource_group=group.name, machine=machine.name)
        return machine

    def get_machine(self, group: ResourceGroup, name: str) -> Machine:
        machine = self.find_machine(group, name)
        if machine is None:
            raise NotFound(
                f"The Resource '{ids.MACHINE_TYPE}/{name}' under resource group '{group.name}' was not found.",
                code="ResourceNotFound",
            )
        return machine

    def get_parent_machine(self, group: ResourceGroup, name: str) -> Machine:
        machine = self.find_machine(group, name)
        if machine is None:
            raise NotFound(
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{ids.MACHINE_TYPE}/{name}' not found.",
                code="ParentResourceNotFound",
            )
        return machine

    def find_extension(self, machine: Machine, name: str):
        extension = selectors.extension_get(machine=machine, name=name)
        if extension is not None:
            self.require_rows(extension=extension.name)
        return extension

    def render_machine(self, machine: Machine) -> dict[str, Any]:
        return s.MachineOutput(machine, context=self.output_context()).data


def _check_name(validator, name: str, code: str) -> str:
    try:
        return validator(name)
    except ValueError as exc:
        raise ArmError(str(exc), code=code, status=400, target="name") from exc


# --- Subscriptions -------------------------------------------------------------------------------------------


def _visible_subscription(principal, subscription_id: str) -> bool:
    """A subscription is visible to whoever may read it or holds a role inside it (as in Azure)."""
    scope = ids.subscription_id(subscription_id)
    granted = authz.assignment(principal)
    return authz.can(principal, authz.READ, scope) or bool(granted and ids.is_within(scope, granted[1]))


class SubscriptionListApi(ArmOperation):
    operation_id = "Subscriptions_List"
    rbac_action = "Microsoft.Resources/subscriptions/read"

    @extend_schema(responses={200: s.SubscriptionListOutput, **error_responses()}, parameters=[SKIPTOKEN_PARAMETER])
    def get(self, request):
        visible = [
            sub
            for sub in selectors.subscription_list()
            if _visible_subscription(request.user, str(sub.subscription_id))
        ]
        return Response(paginate(request, visible, lambda page: s.SubscriptionOutput(page, many=True).data))


class SubscriptionGetApi(ArmOperation):
    operation_id = "Subscriptions_Get"
    rbac_action = "Microsoft.Resources/subscriptions/read"

    @extend_schema(responses={200: s.SubscriptionOutput, **error_responses(403, 404)})
    def get(self, request, subscriptionId):
        if not _visible_subscription(request.user, subscriptionId):
            self.require(authz.READ, ids.subscription_id(subscriptionId))
        return Response(s.SubscriptionOutput(self.get_subscription(subscriptionId)).data)


# --- Resource groups -----------------------------------------------------------------------------------------


class ResourceGroupListApi(ArmOperation):
    operation_id = "ResourceGroups_List"
    rbac_action = "Microsoft.Resources/subscriptions/resourceGroups/read"

    @extend_schema(
        responses={200: s.ResourceGroupListOutput, **error_responses(403, 404)},
        parameters=[
            SKIPTOKEN_PARAMETER,
            OpenApiParameter("$top", int, OpenApiParameter.QUERY, description="At most this many groups."),
            OpenApiParameter("$filter", str, OpenApiParameter.QUERY, description="Accepted and ignored."),
        ],
    )
    def get(self, request, subscriptionId):
        if not _visible_subscription(request.user, subscriptionId):
            self.require(authz.READ, ids.subscription_id(subscriptionId))
        subscription = self.get_subscription(subscriptionId)
        groups = selectors.resource_group_list(subscription=subscription).order_by("name", "pk")
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
        name = _check_name(validation.validate_resource_group_name, resourceGroupName, "InvalidResourceGroup")
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


# --- Machines ------------------------------------------------------------------------------------------------


def _readable_machine_groups(principal, subscription_id: str) -> list[str] | None:
    """``None`` if the principal may read every machine of the subscription, else the groups it may read in."""
    if authz.can(principal, authz.READ, ids.machines_scope(subscription_id)):
        return None
    granted = authz.assignment(principal)
    if granted is None:
        return []
    try:
        scope = ids.parse(granted[1])
    except ValueError:
        return []
    if scope.resource_group is None or ids.fold_name(scope.subscription or "") != ids.fold_name(subscription_id):
        return []
    if authz.can(principal, authz.READ, ids.machines_scope(subscription_id, scope.resource_group)):
        return [scope.resource_group]
    return []


class MachineListBySubscriptionApi(ArmOperation):
    operation_id = "Machines_ListBySubscription"
    rbac_action = "Microsoft.HybridCompute/machines/read"

    @extend_schema(responses={200: s.MachineListOutput, **error_responses(403, 404)}, parameters=[SKIPTOKEN_PARAMETER])
    def get(self, request, subscriptionId):
        groups = _readable_machine_groups(request.user, subscriptionId)
        if groups == []:
            self.require(authz.READ, ids.machines_scope(subscriptionId))
        subscription = self.get_subscription(subscriptionId)
        machines = selectors.machine_list_arm(subscription=subscription)
        if groups is not None:
            # The group the caller's scope names, resolved to its row; read access checked on the row's name.
            group = selectors.resource_group_get(subscription=subscription, name=groups[0])
            readable = group is not None and authz.can(
                request.user, authz.READ, ids.machines_scope(subscriptionId, group.name)
            )
            machines = machines.filter(resource_group=group) if readable else machines.none()
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
        name = _check_name(validation.validate_machine_name, machineName, "InvalidResourceName")
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


# --- Machine extensions --------------------------------------------------------------------------------------


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
        name = _check_name(validation.validate_extension_name, extensionName, "InvalidResourceName")
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
