"""Portal page ``/portal/webhooks``: list, add (secret shown once) and remove webhooks; a webhook's delivery log.

Managing webhooks is for staff users: a webhook sees every machine of its scope.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from arcportal.exceptions import ApplicationError, NotFound
from arcportal.forms import GuardedForm
from machines import webhooks


class WebhookCreateForm(GuardedForm):
    url = forms.CharField(label="Payload URL", max_length=2000)
    scope = forms.ChoiceField(label="Scope")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = webhooks.webhook_scope_choices()

    def clean_url(self):
        try:
            return webhooks.webhook_validate_url(self.cleaned_data["url"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc


def _require_staff(request: HttpRequest) -> None:
    if not (request.user.is_staff or request.user.is_superuser):
        raise PermissionDenied("Only administrators manage webhooks.")


@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    created = None
    if request.method == "POST":
        form = WebhookCreateForm(request.POST)
        if form.is_valid():
            try:
                subscription, resource_group = webhooks.webhook_scope_resolve(form.cleaned_data["scope"])
                created = webhooks.webhook_create(
                    subscription=subscription,
                    resource_group=resource_group,
                    url=form.cleaned_data["url"],
                    created_by=request.user.get_username(),
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
        if created is not None:
            form = WebhookCreateForm()
    else:
        form = WebhookCreateForm()
    context = {"webhooks": webhooks.webhook_list(), "form": form, "created": created}
    return render(request, "machines/webhook_list.html", context, status=201 if created else 200)


@require_http_methods(["GET"])
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request)
    try:
        webhook = webhooks.webhook_get(pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    deliveries = webhooks.webhook_recent_deliveries(webhook=webhook)
    return render(request, "machines/webhook_detail.html", {"webhook": webhook, "deliveries": deliveries})


@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request)
    try:
        webhook = webhooks.webhook_get(pk=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    url = webhook.url
    webhooks.webhook_delete(webhook=webhook)
    messages.success(request, f"Webhook {url} removed.")
    return redirect("webhooks:webhook-list")
