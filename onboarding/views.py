"""Portal pages of onboarding: + Add, the Generate script wizard (its flow is ``onboarding.wizard``), and the
onboarding errors list. No page of the wizard may be cached (``never_cache``): a new service principal's secret is in
the script of the response that created it. + Add and the wizard answer 403 unless ``arcportal.authz.may_onboard``
(the rule that also hides their links); inside the wizard each subscription and resource group is decided on its own
(``onboarding.wizard_scopes``), and a refusal is a form error (400) like any other invalid input.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from arcportal import authz
from arcportal.htmx import is_partial
from onboarding import selectors
from onboarding.forms import MODE_SCALE, MODE_SINGLE
from onboarding.wizard import Wizard


def _may_onboard_or_403(request: HttpRequest) -> None:
    if not authz.may_onboard(request.user):
        raise PermissionDenied("Only users who may create machines (not Readers) add servers.")


@require_GET
def onboarding_add(request: HttpRequest) -> HttpResponse:
    _may_onboard_or_403(request)
    return render(request, "onboarding/add.html", {})


def _mode(request: HttpRequest) -> str:
    return MODE_SCALE if request.GET.get("mode") == MODE_SCALE else MODE_SINGLE


@never_cache
@require_http_methods(["GET", "POST"])
def onboarding_generate(request: HttpRequest) -> HttpResponse:
    _may_onboard_or_403(request)
    wizard = Wizard(request, _mode(request))
    if request.method == "POST":
        wizard.post()
    template = "onboarding/partials/wizard_form.html" if is_partial(request) else "onboarding/wizard.html"
    return render(request, template, wizard.context(), status=wizard.status)


@require_GET
def onboarding_error_list(request: HttpRequest) -> HttpResponse:
    correlation_id = request.GET.get("correlation_id", "").strip()
    page = Paginator(selectors.onboarding_failure_list(correlation_id=correlation_id), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "onboarding/onboarding_error_list.html",
        {"page": page, "rows": selectors.onboarding_failure_rows(page.object_list), "correlation_id": correlation_id},
    )
