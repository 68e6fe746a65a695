"""Agent plane (/his/…) routes owned by onboarding: failure reports from scripts."""

from django.urls import path

from onboarding.api import his

app_name = "onboarding-his"
urlpatterns = [
    path("his/log", his.onboarding_log_put, name="log"),
]
