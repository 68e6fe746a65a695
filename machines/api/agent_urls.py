"""Agent plane (/his/machines/…): identity certificate and heartbeats."""

from django.urls import path  # noqa: F401

app_name = "machines-agent"
urlpatterns = []
