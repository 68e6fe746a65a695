from django.urls import path

from arcportal import converters  # noqa: F401  (registers <id:…>: bounded digits)
from machines import views_webhooks

app_name = "webhooks"

urlpatterns = [
    path("portal/webhooks", views_webhooks.webhook_list, name="webhook-list"),
    path("portal/webhooks/<id:pk>", views_webhooks.webhook_detail, name="webhook-detail"),
    path("portal/webhooks/<id:pk>/delete", views_webhooks.webhook_delete, name="webhook-delete"),
]
