"""Agent plane (/his/…) routes owned by onboarding: failure reports from scripts."""

from django.urls import path  # noqa: F401

app_name = "onboarding-his"
urlpatterns = []
