"""ARM ``Microsoft.Authorization/roleAssignments`` and ``roleDefinitions`` (issue 13), as
``azure-mgmt-authorization`` 4.0.0 (api-version 2022-04-01) sends them: ``role_assignments.create / get / delete /
list_for_scope / list_for_subscription / get_by_id`` and ``role_definitions.list / get``.

Paths are ``/{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`` with ``{scope}`` a subscription,
resource group or machine (the SDK does not quote the slashes of a scope, and sends ``//subscriptions/…`` for a
scope given with its leading slash); ``machines/api/urls.py`` spells the three shapes out. Assigning needs
``Microsoft.Authorization/roleAssignments/write`` at the scope; reading needs ``…/read``; lists show only the rows
the caller may read.
"""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from arcportal import authz
from arcportal.arm import ids
from arcportal.arm.errors import ArmError
from arcportal.arm.pagination import paginate
from arcportal.arm.schema import error_responses
from arcportal.arm.views import rfc3339
from identity import role_assignments as ra
from machines import governance
from machines.api.views.base import ArmOperation

ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
PROVIDER = "/providers/Microsoft.Authorization"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")

_GUID = r"([0-9a-fA-F-]{36})"
_FILTER_TERMS = (
    ("at_scope", re.compile(r"^atScope\(\)$", re.IGNORECASE)),
    ("principal", re.compile(rf"^principalId\s+eq\s+'{_GUID}'$", re.IGNORECASE)),
    ("principal", re.compile(rf"^assignedTo\('{_GUID}'\)$", re.IGNORECASE)),
)


def definition_id(role_id: str, scope: str) -> str:
    """Azure names a built-in role under the subscription it is read in (``/subscriptions/{id}/providers/…``)."""
    try:
        subscription = ids.parse(scope).subscription
    except ValueError:
        subscription = None
    prefix = ids.subscription_id(subscription) if subscription else ""
    return f"{prefix}{PROVIDER}/roleDefinitions/{role_id}"


def assignment_body(row, principals: dict) -> dict:
    principal = principals.get(str(row.principal_id))
    return {
        "id": f"{row.scope}{PROVIDER}/roleAssignments/{row.name}",
        "name": str(row.name),
        "type": ASSIGNMENT_TYPE,
        "properties": {
            "roleDefinitionId": definition_id(row.role_definition_id, row.scope),
            "principalId": str(row.principal_id),
            "principalType": principal.principal_type if principal else "ServicePrincipal",
            "scope": row.scope,
            "description": row.description or None,
            "condition": None,
            "conditionVersion": None,
            "createdOn": rfc3339(row.created_at),
            "updatedOn": rfc3339(row.created_at),
            "createdBy": row.created_by or None,
            "updatedBy": row.created_by or None,
            "delegatedManagedIdentityResourceId": None,
        },
    }


def definition_body(role: authz.RoleDefinition, scope: str) -> dict:
    return {
        "id": definition_id(role.id, scope),
        "name": role.id,
        "type": DEFINITION_TYPE,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": [],
                    "notDataActions": [],
                }
            ],
            "createdOn": None,
            "updatedOn": None,
            "createdBy": None,
            "updatedBy": None,
        },
    }


def parse_assignment_filter(value: str | None) -> dict:
    """``atScope()``, ``principalId eq '{id}'``, ``assignedTo('{id}')``, joined by ``and``; anything else is 400."""
    found: dict = {}
    if not value:
        return found
    for term in re.split(r"\s+and\s+", value.strip(), flags=re.IGNORECASE):
        for key, pattern in _FILTER_TERMS:
            match = pattern.match(term.strip())
            if match:
                found[key] = match.group(1) if match.groups() else True
                break
        else:
            raise ArmError(
                f"The filter '{value}' is not supported. Supported: atScope(), principalId eq '{{id}}', "
                "assignedTo('{id}').",
                code="UnsupportedQuery",
                status=400,
                target="$filter",
            )
    return found


FILTER = OpenApiParameter("$filter", str, OpenApiParameter.QUERY, description="atScope(), principalId eq '{id}'.")
READ_SCHEMA = extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(400, 403, 404)}, parameters=[FILTER])
GET_SCHEMA = extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(400, 403, 404)})
PUT_SCHEMA = extend_schema(
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT, **error_responses(400, 403, 404, 409)},
)
DELETE_SCHEMA = extend_schema(responses={200: OpenApiTypes.OBJECT, 204: None, **error_responses(400, 403)})


def scope_from(kwargs: dict) -> str:
    """The scope a URL names through its ``subscriptionId`` / ``resourceGroupName`` / ``machineName`` parts."""
    subscription = kwargs.get("subscriptionId")
    if not subscription:
        return ids.ROOT
    group, machine = kwargs.get("resourceGroupName"), kwargs.get("machineName")
    if group and machine:
        return ids.machine_id(subscription, group, machine)
    if group:
        return ids.resource_group_id(subscription, group)
    return ids.subscription_id(subscription)


class _AuthorizationOperation(ArmOperation):
    def scope(self, kwargs: dict) -> str:
        return ra.scope_clean(scope_from(kwargs))  # 400 InvalidScope: not a subscription GUID

    def render_rows(self, rows):
        principals = governance.principal_names()
        return lambda page: [assignment_body(row, principals) for row in page]

    def visible(self, rows):
        return [row for row in rows if governance.role_assignment_visible(self.request.user, row)]

    def assignment_at(self, name: str, scope: str):
        """The assignment ``name`` when it is at ``scope`` (an assignment's URL names its scope), else None."""
        row = ra.role_assignment_get(name=name)
        return row if row is not None and ids.fold_name(row.scope) == ids.fold_name(scope) else None


class RoleAssignmentListForScopeApi(_AuthorizationOperation):
    """``list_for_scope`` and ``list_for_subscription`` (the same URL at a subscription): the assignments at, above
    and below the scope that the caller may read. A caller with no role at or below the scope gets 403."""

    operation_id = "RoleAssignments_ListForScope"
    rbac_action = authz.ROLE_ASSIGNMENTS_READ

    @READ_SCHEMA
    def get(self, request, **kwargs):
        clean = self.scope(kwargs)
        wanted = parse_assignment_filter(request.GET.get("$filter"))
        if not authz.holds_role_within(request.user, clean):
            self.require(authz.ROLE_ASSIGNMENTS_READ, clean)
        governance.scope_resolve(clean)
        rows = ra.role_assignment_list(
            scope=clean, principal_id=wanted.get("principal"), at_scope_only=bool(wanted.get("at_scope"))
        )
        return Response(paginate(request, self.visible(rows), self.render_rows(rows)))


class RoleAssignmentGetApi(_AuthorizationOperation):
    operation_id = "RoleAssignments_Get"
    rbac_action = authz.ROLE_ASSIGNMENTS_READ

    @GET_SCHEMA
    def get(self, request, name, **kwargs):
        clean = self.scope(kwargs)
        self.require(authz.ROLE_ASSIGNMENTS_READ, clean)
        row = self.assignment_at(name, clean)
        if row is None:
            raise ArmError(f"The role assignment '{name}' is not found.", code="RoleAssignmentNotFound", status=404)
        return Response(assignment_body(row, governance.principal_names()))


class RoleAssignmentCreateApi(_AuthorizationOperation):
    operation_id = "RoleAssignments_Create"
    rbac_action = authz.ROLE_ASSIGNMENTS_WRITE

    @PUT_SCHEMA
    def put(self, request, name, **kwargs):
        clean = self.scope(kwargs)
        self.require(authz.ROLE_ASSIGNMENTS_WRITE, clean)
        body = self.json_body()
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise ArmError(
                "The request content must have a 'properties' object.",
                code="InvalidRequestContent",
                status=400,
                target="properties",
            )
        for field in ("roleDefinitionId", "principalId"):
            if not isinstance(properties.get(field), str) or not properties[field]:
                raise ArmError(
                    f"'properties.{field}' is required.",
                    code="InvalidRequestContent",
                    status=400,
                    target=f"properties.{field}",
                )
        principal_type = properties.get("principalType")
        if principal_type is not None and principal_type not in PRINCIPAL_TYPES:
            raise ArmError(
                f"The principal type '{principal_type}' is not valid.",
                code="InvalidPrincipalType",
                status=400,
                target="properties.principalType",
            )
        description = properties.get("description") or ""
        if not isinstance(description, str):
            raise ArmError("'properties.description' must be a string.", code="InvalidRequestContent", status=400)
        if properties.get("condition"):
            raise ArmError(
                "Conditions on role assignments are not supported.",
                code="InvalidRequestContent",
                status=400,
                target="properties.condition",
            )
        row, created = governance.role_assignment_assign(
            scope=clean,
            role_definition_id=properties["roleDefinitionId"],
            principal_id=properties["principalId"],
            name=name,
            description=description,
            created_by=str(getattr(request.user, "object_id", "") or request.user),
        )
        return Response(assignment_body(row, governance.principal_names()), status=201 if created else 200)


class RoleAssignmentDeleteApi(_AuthorizationOperation):
    operation_id = "RoleAssignments_Delete"
    rbac_action = authz.ROLE_ASSIGNMENTS_DELETE

    @DELETE_SCHEMA
    def delete(self, request, name, **kwargs):
        clean = self.scope(kwargs)
        self.require(authz.ROLE_ASSIGNMENTS_DELETE, clean)
        row = self.assignment_at(name, clean)
        if row is None:
            return Response(status=204)
        body = assignment_body(row, governance.principal_names())
        ra.role_assignment_delete(name=name)  # the activity event names the caller of this request
        return Response(body)


class RoleDefinitionListApi(ArmOperation):
    operation_id = "RoleDefinitions_List"
    rbac_action = authz.ROLE_DEFINITIONS_READ

    @READ_SCHEMA
    def get(self, request, **kwargs):
        clean = scope_from(kwargs)
        roles = list(authz.ROLE_DEFINITIONS)
        value = request.GET.get("$filter")
        if value:
            match = re.match(r"^\s*roleName\s+eq\s+'(.*)'\s*$", value, re.IGNORECASE)
            if match is None and not re.match(r"^\s*type\s+eq\s+'BuiltInRole'\s*$", value, re.IGNORECASE):
                raise ArmError(
                    f"The filter '{value}' is not supported. Supported: roleName eq '{{name}}'.",
                    code="UnsupportedQuery",
                    status=400,
                    target="$filter",
                )
            if match is not None:
                roles = [role for role in roles if role.name.lower() == match.group(1).lower()]
        return Response(paginate(request, roles, lambda page: [definition_body(role, clean) for role in page]))


class RoleDefinitionGetApi(ArmOperation):
    operation_id = "RoleDefinitions_Get"
    rbac_action = authz.ROLE_DEFINITIONS_READ

    @GET_SCHEMA
    def get(self, request, roleDefinitionId, **kwargs):
        role = authz.ROLES_BY_ID.get(str(roleDefinitionId).lower())
        if role is None:
            raise ArmError(
                f"The role definition '{roleDefinitionId}' does not exist.",
                code="RoleDefinitionDoesNotExist",
                status=404,
            )
        return Response(definition_body(role, scope_from(kwargs)))
