"""Portal pages under "Additional setup → Service principals": list, create (secret shown once), revoke.

They live in onboarding (not identity): a principal's scope is chosen from the subscriptions and resource groups
(machines), and these principals are what onboarding at scale signs in with (docs/decisions.md).

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


def scope_choices() -> list[tuple[str, str]]:
    choices: list[tuple[str, str]] = []
    for subscription in subscription_list():
        choices.append((subscription.arm_id, f"Subscription: {subscription.display_name}"))
        for group in resource_group_list(subscription=subscription):
            choices.append((group.arm_id, f"Resource group: {subscription.display_name} / {group.name}"))
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = scope_choices()


def _context(request: HttpRequest, form: ServicePrincipalCreateForm, created=None) -> dict:
    tenant = identity_selectors.tenant_get()
    now = timezone.now()
    principals = list(identity_selectors.service_principal_list())
    for principal in principals:
        principal.state = (
            "Revoked" if principal.revoked_at else ("Expired" if principal.expires_at <= now else "Active")
        )
    return {
        "service_principals": principals,
        "form": form,
        "created": created,
        "tenant_id": str(tenant.tenant_id) if tenant else "",
        "authority": public_base_url(request),
        "ca_fingerprint": pki.format_fingerprint(pki.ca_fingerprint_sha256()),
    }


@require_http_methods(["GET", "POST"])
def service_principal_list(request: HttpRequest) -> HttpResponse:
    created = None
    form = ServicePrincipalCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        scope = form.cleaned_data["scope"]
        if not authz.may_create_service_principal(request.user, scope):
            raise PermissionDenied("You may not create service principals for this scope (it assigns them a role).")
        try:
            created = sp_services.service_principal_create(
                display_name=form.cleaned_data["display_name"],
                role=form.cleaned_data["role"],
                scope=scope,
                expires_at=timezone.now() + dt.timedelta(days=form.cleaned_data["expires_in_days"]),
                max_uses=form.cleaned_data["max_uses"],
                created_by=request.user,
            )
            form = ServicePrincipalCreateForm()
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    response = render(
        request,
        "onboarding/service_principal_list.html",
        _context(request, form, created),
        status=201 if created else 200,
    )
    add_never_cache_headers(response)  # the secret must not stay in any cache
    return response


@require_POST
def service_principal_revoke(request: HttpRequest, client_id) -> HttpResponse:
    principal = identity_selectors.service_principal_get(client_id=str(client_id))
    if principal is None:
        raise Http404("No such service principal.")
    if not authz.can(request.user, authz.WRITE, principal.scope):
        raise PermissionDenied("You may not revoke this service principal.")
    sp_services.service_principal_revoke(service_principal=principal)
    messages.success(request, f"Service principal '{principal.display_name}' revoked: it can no longer sign in.")
    return redirect("onboarding:service-principal-list")
