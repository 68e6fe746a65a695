"""Device-code sign-in: the approval page (session) and the RFC 8628 device authorization endpoint (OAuth)."""

from django.urls import path, re_path

from onboarding import views_device
from onboarding.api import device

app_name = "onboarding-device"
urlpatterns = [
    path("devicelogin", views_device.device_login, name="device-login"),
    path("devicelogin/confirm", views_device.device_login_confirm, name="device-login-confirm"),
    re_path(r"^(?P<tenant>[^/]+)/oauth2/v2\.0/devicecode$", device.device_code_authorize, name="device-code-authorize"),
]
