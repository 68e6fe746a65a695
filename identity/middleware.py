"""Loads a signed-in portal user's role assignments once per request, so ``arcportal.authz.can`` stays pure.

Placed right after Django's ``AuthenticationMiddleware``; the user is still loaded lazily (nothing is read for a
request that never looks at ``request.user``), and the grants come with it in one more query.
"""

from __future__ import annotations

from django.contrib.auth.middleware import get_user
from django.utils.functional import SimpleLazyObject

from identity.role_assignments import role_grants_for
from identity.tokens import user_object_id


def user_with_grants(user):
    """``user`` with ``arc_grants`` (its role assignments) set; anonymous users get none."""
    if getattr(user, "is_authenticated", False) and getattr(user, "arc_grants", None) is None:
        user.arc_grants = role_grants_for(principal_id=user_object_id(user))
    return user


class RoleAssignmentMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.user = SimpleLazyObject(lambda: user_with_grants(get_user(request)))
        return self.get_response(request)
