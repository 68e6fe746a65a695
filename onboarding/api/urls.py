"""Identity endpoints (OAuth 2.0 / OIDC on the Microsoft identity platform's paths) and public downloads."""

from django.urls import path, re_path

from onboarding.api import downloads, identity

app_name = "onboarding-api"
urlpatterns = [
    re_path(
        r"^(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$",
        identity.openid_configuration,
        name="openid-configuration",
    ),
    re_path(r"^(?P<tenant>[^/]+)/discovery/v2\.0/keys$", identity.jwks, name="jwks"),
    re_path(r"^(?P<tenant>[^/]+)/oauth2/v2\.0/token$", identity.token, name="token"),
    path("downloads/ca.pem", downloads.ca_certificate_download, name="ca-certificate"),
]
