"""Portal pages of onboarding (namespace "onboarding"): + Add and its wizard, the onboarding errors list, and the
service principals that onboard servers at scale."""

from django.urls import path

from onboarding import views, views_service_principals

app_name = "onboarding"
urlpatterns = [
    path("portal/add", views.onboarding_add, name="add"),
    path("portal/add/generate", views.onboarding_generate, name="generate"),
    path("portal/onboarding-errors", views.onboarding_error_list, name="onboarding-error-list"),
    path(
        "portal/serviceprincipals",
        views_service_principals.service_principal_list,
        name="service-principal-list",
    ),
    path(
        "portal/serviceprincipals/<uuid:client_id>/revoke",
        views_service_principals.service_principal_revoke,
        name="service-principal-revoke",
    ),
]
