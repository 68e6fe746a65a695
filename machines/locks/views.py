"""The portal's Locks page at subscription, resource-group and machine scope: the locks that apply (on this scope,
inherited from above, or on resources below), + Add and Delete for those on this scope. Only callers allowed
``LOCKS_WRITE`` (Owner, User Access Administrator) see the buttons; a hand-made POST from anyone else is 403."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from arcportal import authz
from arcportal.exceptions import ApplicationError
from machines.locks import rules, selectors, services
from machines.locks.forms import LockAddForm, LockDeleteForm
from machines.menu import render_machine_page
from machines.scopes import portal_scope


def _post(request: HttpRequest, scope) -> tuple[LockAddForm | None, int]:
    """Handle a POST: returns the add form to re-show with its errors (or None) and the status."""
    caller = request.user.get_username()
    if "delete" in request.POST:
        delete = LockDeleteForm(request.POST)
        lock = delete.is_valid() and selectors.lock_get(scope=scope.arm_id, name=delete.cleaned_data["delete"])
        if not lock:
            messages.error(request, "That lock no longer exists on this scope.")
            return None, 404
        services.lock_delete(lock=lock, caller=caller)
        messages.success(request, f"Deleted lock '{lock.name}'.")
        return None, 302
    form = LockAddForm(request.POST)
    if not form.is_valid():
        return form, 400
    data = form.cleaned_data
    try:
        result = services.lock_create_or_update(
            scope=scope.arm_id, name=data["name"], level=data["level"], notes=data["notes"], caller=caller
        )
    except ApplicationError as exc:
        form.add_error("name", exc.message)
        return form, exc.status
    messages.success(request, f"{'Added' if result.created else 'Updated'} lock '{result.instance.name}'.")
    return None, 302


@require_http_methods(["GET", "POST"])
def locks_page(
    request: HttpRequest, subscription_id: str, resource_group: str | None = None, name: str | None = None
) -> HttpResponse:
    scope = portal_scope(subscription_id=subscription_id, resource_group=resource_group, name=name)
    if not authz.can(request.user, authz.READ, scope.arm_id):
        return HttpResponse("You do not have access to this scope.", status=403)
    may_write = authz.can(request.user, authz.LOCKS_WRITE, scope.arm_id)
    form, status = None, 200
    if request.method == "POST":
        if not may_write:
            return HttpResponse("Only an Owner or User Access Administrator may add or delete locks.", status=403)
        form, status = _post(request, scope)
        if status == 302:
            return redirect(request.path)
    own_key = rules.key_of(scope.arm_id)
    locks = [(lock, lock.scope_key == own_key) for lock in selectors.lock_list(scope=scope.arm_id)]
    context = {
        "scope": scope,
        "locks": locks,
        "may_write": may_write,
        "form": form or LockAddForm(),
        "adding": form is not None or request.GET.get("add") == "1",
        "page_url": request.path,
    }
    if scope.kind == "machine":
        return render_machine_page(
            request,
            "machines/locks/machine_locks.html",
            machine=scope.machine,
            active="machines:machine-locks",
            context=context,
            status=status,
        )
    return render(request, "machines/locks/locks.html", context, status=status)
