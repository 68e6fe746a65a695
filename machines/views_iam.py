"""Access control (IAM) pages at subscription, resource-group and machine scope (issue 13).

One view per scope shape, one body: role assignments that apply here (direct, or inherited with the scope they come
from), **+ Add role assignment** (Role → Members → Review + assign, one step per GET, the last one a POST), Remove
(direct assignments only; inherited ones are removed where they were made), and "Check access" for one principal.
Reading needs ``Microsoft.Authorization/roleAssignments/read`` at the scope; adding needs ``…/write``, removing
``…/delete`` (Owner, User Access Administrator).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from arcportal import authz
from arcportal.arm import ids
from arcportal.exceptions import ApplicationError
from arcportal.forms import GuardedForm
from identity import role_assignments as ra
from machines import governance, selectors
from machines.menu import render_machine_page

MACHINE_IAM = "machines:machine-iam"


class RoleAssignmentAddForm(GuardedForm):
    role = forms.CharField(max_length=60)
    member = forms.CharField(max_length=60)


class RoleAssignmentRemoveForm(GuardedForm):
    assignment = forms.CharField(max_length=60)


def _where(row_scope: str, scope: str) -> str:
    if ids.fold_name(row_scope) == ids.fold_name(scope):
        return "This resource"
    kind = ids.parse(row_scope).kind
    return {"subscription": "Subscription (Inherited)", "resourceGroup": "Resource group (Inherited)"}.get(
        kind, "Inherited"
    )


def _rows(scope: str, principals: dict, *, principal_id: str | None = None) -> list[dict]:
    rows = []
    for row in ra.role_assignment_list(scope=scope, principal_id=principal_id, at_scope_only=True):
        who = principals.get(str(row.principal_id))
        role = authz.ROLES_BY_ID.get(row.role_definition_id)
        rows.append(
            {
                "name": str(row.name),
                "role": role.name if role else row.role_definition_id,
                "principal": who.display_name if who else str(row.principal_id),
                "principal_id": str(row.principal_id),
                "type": {"user": "User", "app": "App", "machine": "Managed identity"}.get(row.principal_kind, ""),
                "scope": row.scope,
                "where": _where(row.scope, scope),
                "direct": ids.fold_name(row.scope) == ids.fold_name(scope),
            }
        )
    return rows


def _context(request: HttpRequest, scope: str) -> dict:
    principals = governance.principal_names()
    user = request.user
    choices = {p.object_id: p for p in governance.principal_choices(user)}
    step_role = authz.ROLES_BY_ID.get(request.GET.get("role", ""))
    step_member = choices.get(request.GET.get("member", "")) if step_role else None
    check = request.GET.get("check", "").strip()
    checked = choices.get(check) if check else None
    return {
        "scope": scope,
        "rows": _rows(scope, principals),
        "can_assign": authz.can(user, authz.ROLE_ASSIGNMENTS_WRITE, scope),
        "can_remove": authz.can(user, authz.ROLE_ASSIGNMENTS_DELETE, scope),
        "adding": request.GET.get("add") == "1",
        "roles": authz.ROLE_DEFINITIONS,
        "members": sorted(choices.values(), key=lambda p: (p.kind, p.display_name.lower())),
        "step_role": step_role,
        "step_member": step_member,
        "check": check,
        "checked": checked,
        "checked_rows": _rows(scope, principals, principal_id=check) if checked else [],
    }


def _post(request: HttpRequest, scope: str) -> None:
    """Add or remove one assignment; refusals are 403, bad input a message (nothing written either way)."""
    if request.POST.get("action") == "remove":
        form = RoleAssignmentRemoveForm(request.POST)
        row = ra.role_assignment_get(name=request.POST.get("assignment", "")) if form.is_valid() else None
        if row is None or ids.fold_name(row.scope) != ids.fold_name(scope):
            messages.error(request, "That role assignment does not exist at this scope.")
            return
        if not authz.can(request.user, authz.ROLE_ASSIGNMENTS_DELETE, scope):
            raise PermissionDenied("You may not remove role assignments here.")
        ra.role_assignment_delete(name=str(row.name), caller=request.user.get_username())
        messages.success(request, "Removed the role assignment.")
        return
    if not authz.can(request.user, authz.ROLE_ASSIGNMENTS_WRITE, scope):
        raise PermissionDenied("You may not add role assignments here.")
    form = RoleAssignmentAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role and a member.")
        return
    try:
        governance.role_assignment_assign(
            scope=scope,
            role_definition_id=form.cleaned_data["role"],
            principal_id=form.cleaned_data["member"],
            created_by=request.user.get_username(),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return
    messages.success(request, "Added the role assignment.")


def _scope_or_404(scope: str) -> str:
    try:
        return governance.scope_resolve(scope)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


def _iam(request: HttpRequest, scope: str, *, machine=None) -> HttpResponse:
    if not authz.can(request.user, authz.ROLE_ASSIGNMENTS_READ, scope):
        raise PermissionDenied("You may not see the role assignments here.")
    if request.method == "POST":
        _post(request, scope)
        return redirect(request.path)
    context = _context(request, scope)
    if machine is not None:
        return render_machine_page(
            request, "machines/machine_iam.html", machine=machine, active=MACHINE_IAM, context=context
        )
    context["title"] = scope
    return render(request, "machines/scope_iam.html", context)


@require_http_methods(["GET", "POST"])
def subscription_iam(request: HttpRequest, subscription_id: str) -> HttpResponse:
    return _iam(request, _scope_or_404(ids.subscription_id(subscription_id)))


@require_http_methods(["GET", "POST"])
def resource_group_iam(request: HttpRequest, subscription_id: str, resource_group: str) -> HttpResponse:
    return _iam(request, _scope_or_404(ids.resource_group_id(subscription_id, resource_group)))


@require_http_methods(["GET", "POST"])
def machine_iam(request: HttpRequest, subscription_id: str, resource_group: str, name: str) -> HttpResponse:
    scope = _scope_or_404(ids.machine_id(subscription_id, resource_group, name))
    subscription = selectors.subscription_get(subscription_id=subscription_id)
    group = selectors.resource_group_get(subscription=subscription, name=resource_group)
    machine = selectors.machine_get(resource_group=group, name=name)
    return _iam(request, scope, machine=machine)


for _view in (subscription_iam, resource_group_iam, machine_iam):
    _view.scope_checked_in_view = True  # arcportal.scopeguard: these decide roleAssignments/read|write|delete
