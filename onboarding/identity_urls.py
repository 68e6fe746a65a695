"""Portal pages for identity: service principals (namespace "identity")."""

from django.urls import path

from onboarding import views_identity

app_name = "identity"
urlpatterns = [
    path("portal/serviceprincipals", views_identity.service_principal_list, name="service-principal-list"),
    path(
        "portal/serviceprincipals/<uuid:client_id>/revoke",
        views_identity.service_principal_revoke,
        name="service-principal-revoke",
    ),
]
