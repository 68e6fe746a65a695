"""Portal pages for identity: service principals (namespace "identity")."""

from django.urls import path  # noqa: F401

app_name = "identity"
urlpatterns = []
