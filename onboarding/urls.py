"""Portal pages of onboarding (namespace "onboarding")."""

from django.urls import path

from onboarding import views

app_name = "onboarding"
urlpatterns = [
    path("portal/add", views.onboarding_add, name="add"),
    path("portal/add/generate", views.onboarding_generate, name="generate"),
    path("portal/onboarding-errors", views.onboarding_error_list, name="onboarding-error-list"),
]
