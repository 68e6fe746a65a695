"""Identity endpoints (namespace "identity"): OAuth 2.0 / OIDC on the Microsoft identity platform's paths, the RFC 8628
device authorization endpoint, and the device-code approval page ``/devicelogin`` (session)."""

from django.urls import path, re_path

from identity import views_device, views_users
from identity.api import device, oidc

app_name = "identity"
urlpatterns = [
    re_path(
        r"^(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$",
        oidc.openid_configuration,
        name="openid-configuration",
    ),
    re_path(r"^(?P<tenant>[^/]+)/discovery/v2\.0/keys$", oidc.jwks, name="jwks"),
    re_path(r"^(?P<tenant>[^/]+)/oauth2/v2\.0/token$", oidc.token, name="token"),
    re_path(r"^(?P<tenant>[^/]+)/oauth2/v2\.0/devicecode$", device.device_code_authorize, name="device-code-authorize"),
    path("devicelogin", views_device.device_login, name="device-login"),
    path("portal/users", views_users.user_list, name="user-list"),
    path("devicelogin/confirm", views_device.device_login_confirm, name="device-login-confirm"),
]
