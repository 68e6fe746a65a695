"""The portal's door check (issue 13): every portal URL that names a scope (``subscription_id``, ``resource_group``,
``name`` = machine) is reachable only by a user ``arcportal.authz.can`` lets read that scope, and a non-safe request
(POST/PUT/PATCH/DELETE) only by one it lets write there. A Reader therefore gets 403 on any write made by hand,
whatever page or fragment it aims at; views hide the buttons too, but never rely on that.

Views that decide a finer action themselves (the IAM pages: ``Microsoft.Authorization/roleAssignments/write``) set
``scope_checked_in_view = True`` on the view function. Views that check their own write permission and explain a
refusal in their own words are named in ``WRITES_CHECKED_IN_VIEW``: the door only requires read for them.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from arcportal import authz
from arcportal.arm import ids

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WRITES_CHECKED_IN_VIEW = frozenset(
    {
        "machines:machine-extension-create",
        "machines:machine-extension-uninstall",
        "machines:machine-run-command",
    }
)


def scope_of_kwargs(kwargs: dict) -> str | None:
    """The ARM scope a portal URL's kwargs name, or ``None`` when they name none."""
    subscription = kwargs.get("subscription_id")
    if not subscription:
        return None
    group, machine = kwargs.get("resource_group"), kwargs.get("name")
    if group and machine:
        return ids.machine_id(str(subscription), group, machine)
    if group:
        return ids.resource_group_id(str(subscription), group)
    return ids.subscription_id(str(subscription))


class ScopeGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        scope = scope_of_kwargs(view_kwargs)
        if scope is None or getattr(view_func, "scope_checked_in_view", False):
            return None
        user = request.user
        if not getattr(user, "is_authenticated", False):
            return None  # the sign-in redirect is LoginRequiredByDefaultMiddleware's
        action = authz.READ if request.method in SAFE_METHODS else authz.WRITE
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name in WRITES_CHECKED_IN_VIEW:
            action = authz.READ
        if not authz.can(user, action, scope):
            raise PermissionDenied(f"You do not have permission to {action} at {scope}.")
        return None
