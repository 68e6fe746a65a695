"""The Users page (issue 13): portal users with their object ids and role-assignment counts, and *+ New user* (no
access until a role is assigned on an Access control (IAM) page). Only for users who may assign roles somewhere
(Owner, User Access Administrator)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from arcportal import authz
from arcportal.exceptions import ApplicationError
from arcportal.forms import GuardedForm
from identity.models import RoleAssignment
from identity.services import portal_user_create
from identity.tokens import user_object_id


class UserCreateForm(GuardedForm):
    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=128, required=False, widget=forms.PasswordInput)


@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    if not authz.may_manage_users(request.user):  # the sidebar's Users link shows on the same rule
        raise PermissionDenied("Only Owners and User Access Administrators manage users.")
    form, status, created = UserCreateForm(), 200, None
    if request.method == "POST":
        form = UserCreateForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                user, generated = portal_user_create(**form.cleaned_data)
            except ApplicationError as exc:
                form.add_error("username", exc.message)
            else:
                created = {"username": user.get_username(), "password": generated}
                messages.success(request, f"Created {user.get_username()}: no access until a role is assigned.")
                form, status = UserCreateForm(), 201
    counts: dict[str, int] = {}
    for principal_id in RoleAssignment.objects.filter(principal_kind="user").values_list("principal_id", flat=True):
        counts[str(principal_id)] = counts.get(str(principal_id), 0) + 1
    users = [
        {"username": u.get_username(), "object_id": user_object_id(u), "active": u.is_active}
        for u in get_user_model()._default_manager.order_by("username")
    ]
    for row in users:
        row["assignments"] = counts.get(row["object_id"], 0)
    return render(request, "identity/user_list.html", {"users": users, "form": form, "created": created}, status=status)
