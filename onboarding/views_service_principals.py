"""Portal pages under "Additional setup → Service principals": list, create (secret shown once), revoke.

They live in onboarding (not identity): a principal's scope is chosen from the subscriptions and resource groups
(machines), and these principals are what onboarding at scale signs in with (docs/decisions.md).

Who may do what is ``arcportal.authz``'s (docs/governance.md): the list shows the principals whose scope the user
may read role assignments at (``may_read_service_principal``; any other one answers 404, as if it did not exist); the
scope dropdown offers the subscriptions and groups where it may create one (``may_create_service_principal``: write
and ``roleAssignments/write``) and a Revoke button shows where it may revoke (``may_revoke_service_principal``: write
and ``roleAssignments/delete``), each by the very function the POST is refused with (403, nothing written).

The secret is rendered only in the response to the POST that created it (``Cache-Control: no-store``); it is never
put in the session, a message, a redirect URL or a log. The page also shows the portal CA's SHA-256 fingerprint and
what a client needs to sign in (tenant id, authority).
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from arcportal import authz
from arcportal.arm.views import public_base_url
from arcportal.exceptions import ApplicationError
from arcportal.forms import GuardedForm
from identity import pki
from identity import selectors as identity_selectors
from identity import service_principals as sp_services
from identity.models import Role
from machines.selectors import resource_group_list, subscription_list

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("180", "180 days"), ("365", "1 year"), ("730", "2 years")]


def creatable_scope_choices(user) -> list[tuple[str, str]]:
    """The subscriptions and resource groups where ``user`` may create a service principal (two queries)."""
    groups: dict[int, list] = {}
    for group in resource_group_list():
        groups.setdefault(group.subscription_id, []).append(group)
    choices: list[tuple[str, str]] = []
    for subscription in subscription_list():
        scopes = [(subscription.arm_id, f"Subscription: {subscription.display_name}")] + [
            (group.arm_id, f"Resource group: {subscription.display_name} / {group.name}")
            for group in groups.get(subscription.pk, [])
        ]
        choices += [(scope, label) for scope, label in scopes if authz.may_create_service_principal(user, scope)]
    return choices


class ServicePrincipalCreateForm(GuardedForm):
    display_name = forms.CharField(label="Name", max_length=200)
    role = forms.ChoiceField(label="Role", choices=[(r, r) for r in Role.values], initial=Role.ONBOARDING)
    scope = forms.ChoiceField(label="Scope")
    expires_in_days = forms.TypedChoiceField(
        label="Secret expires after", choices=EXPIRY_CHOICES, initial="365", coerce=int
    )
    max_uses = forms.IntegerField(
        label="Maximum sign-ins", required=False, min_value=1, help_text="Leave empty for no limit."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = creatable_scope_choices(user)


def _context(request: HttpRequest, form: ServicePrincipalCreateForm, created=None) -> dict:
    tenant = identity_selectors.tenant_get()
    now = timezone.now()
    user = request.user
    principals = [
        principal
        for principal in identity_selectors.service_principal_list()
        if authz.may_read_service_principal(user, principal.scope)
    ]
    for principal in principals:
        principal.state = (
            "Revoked" if principal.revoked_at else ("Expired" if principal.expires_at <= now else "Active")
        )
        principal.may_revoke = not principal.revoked_at and authz.may_revoke_service_principal(user, principal.scope)
    return {
        "service_principals": principals,
        "form": form,
        "may_create": bool(form.fields["scope"].choices),
        "created": created,
        "tenant_id": str(tenant.tenant_id) if tenant else "",
        "authority": public_base_url(request),
        "ca_fingerprint": pki.format_fingerprint(pki.ca_fingerprint_sha256()),
    }


@require_http_methods(["GET", "POST"])
def service_principal_list(request: HttpRequest) -> HttpResponse:
    """The list and the create form. A POST is refused (403) unless the user may create a principal at the posted
    scope, before the form is read; the form offers only such scopes that exist (400 for any other input)."""
    user = request.user
    if request.method == "POST" and not authz.may_create_service_principal(user, request.POST.get("scope", "")):
        raise PermissionDenied("You may not create service principals for this scope (it assigns them a role).")
    form = ServicePrincipalCreateForm(request.POST or None, user=user)
    created, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                created = sp_services.service_principal_create(
                    display_name=form.cleaned_data["display_name"],
                    role=form.cleaned_data["role"],
                    scope=form.cleaned_data["scope"],
                    expires_at=timezone.now() + dt.timedelta(days=form.cleaned_data["expires_in_days"]),
                    max_uses=form.cleaned_data["max_uses"],
                    created_by=user,
                )
                form, status = ServicePrincipalCreateForm(user=user), 201
            except ApplicationError as exc:
                form.add_error(None, exc.message)
    context = _context(request, form, created)
    response = render(request, "onboarding/service_principal_list.html", context, status=status)
    add_never_cache_headers(response)  # the secret must not stay in any cache
    return response


@require_POST
def service_principal_revoke(request: HttpRequest, client_id) -> HttpResponse:
    """Revoke: 404 for a principal the user may not see (as for one that does not exist), 403 unless it may revoke
    there (``authz.may_revoke_service_principal``, the rule that shows the button)."""
    principal = identity_selectors.service_principal_get(client_id=str(client_id))
    if principal is None or not authz.may_read_service_principal(request.user, principal.scope):
        raise Http404("No such service principal.")
    if not authz.may_revoke_service_principal(request.user, principal.scope):
        raise PermissionDenied(
            "You may not revoke this service principal: taking its role away needs "
            f"{authz.ROLE_ASSIGNMENTS_DELETE} at its scope ({authz.OWNER})."
        )
    sp_services.service_principal_revoke(service_principal=principal)
    messages.success(request, f"Service principal '{principal.display_name}' revoked: it can no longer sign in.")
    return redirect("onboarding:service-principal-list")
