"""Resource groups in the portal: the list with machine counts, *Create a resource group*, and *Delete a resource
group* (type its name; its machines go with it)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from arcportal import authz
from arcportal.arm import ids
from arcportal.exceptions import ApplicationError
from machines import governance, selectors, services
from machines.forms import ResourceGroupCreateForm, ResourceGroupDeleteForm, tag_formset
from machines.regions import display_name


def _resource_group_page(request: HttpRequest, *, form=None, formset=None, status: int = 200) -> HttpResponse:
    subscriptions = selectors.subscription_list()
    creating = form is not None or request.GET.get("create") == "1"
    if creating and form is None:
        form = ResourceGroupCreateForm(subscriptions=subscriptions)
        formset = tag_formset()
    context = {
        "resource_groups": governance.resource_groups_readable(selectors.resource_group_list(), request.user),
        "form": form,
        "tag_formset": formset,
        "creating": creating,
        "governance_subscriptions": subscriptions,  # the subscriptions' Activity log and Locks pages
    }
    return render(request, "machines/resource_group_list.html", context, status=status)


@require_http_methods(["GET", "POST"])
def resource_group_list(request: HttpRequest) -> HttpResponse:
    """Resource groups with their machine counts; ``?create=1`` opens the *Create a resource group* panel."""
    if request.method == "GET":
        return _resource_group_page(request)
    form = ResourceGroupCreateForm(request.POST, subscriptions=selectors.subscription_list())
    formset = tag_formset(data=request.POST)
    if not (form.is_valid() and formset.is_valid()):
        return _resource_group_page(request, form=form, formset=formset, status=400)
    scope = ids.resource_group_id(str(form.cleaned_data["subscription"].subscription_id), form.cleaned_data["name"])
    if not authz.can(request.user, authz.WRITE, scope):
        raise PermissionDenied(f"You may not create resource groups at {scope}.")
    try:
        group = services.resource_group_create(
            subscription=form.cleaned_data["subscription"],
            name=form.cleaned_data["name"],
            location=form.cleaned_data["location"],
            tags=formset.tags(),
        )
    except ApplicationError as exc:
        form.add_error("name" if exc.code == "ResourceGroupExists" else None, exc.message)
        return _resource_group_page(request, form=form, formset=formset, status=409 if exc.status == 409 else 400)
    messages.success(request, f"Created resource group '{group.name}' in {display_name(group.location)}.")
    return redirect("machines:resource-group-list")


@require_http_methods(["GET", "POST"])
def resource_group_delete(request: HttpRequest, subscription_id: str, resource_group: str) -> HttpResponse:
    """Azure's *Delete a resource group*: type its name; its machines are deleted with it."""
    subscription = selectors.subscription_get(subscription_id=subscription_id)
    group = subscription and selectors.resource_group_get(subscription=subscription, name=resource_group)
    if not group:
        raise Http404(f"The resource group '{resource_group}' was not found.")
    machine_count = selectors.resource_group_machine_count(resource_group=group)
    form = ResourceGroupDeleteForm(request.POST or None, resource_group_name=group.name)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            deleted = services.resource_group_delete(resource_group=group, actor=request.user.get_username())
        except ApplicationError as exc:  # a lock on the group, above it or on a machine in it (409 ScopeLocked)
            form.add_error(None, exc.message)
            status = exc.status
        else:
            messages.success(
                request,
                f"Deleted resource group '{group.name}' and its {deleted} machine{'s' if deleted != 1 else ''}.",
            )
            return redirect("machines:resource-group-list")
    context = {"group": group, "form": form, "machine_count": machine_count}
    return render(request, "machines/resource_group_delete.html", context, status=status)
