from django.urls import path

from machines import views

app_name = "machines"
urlpatterns = [
    path("", views.machine_list, name="machine-list"),
    path("portal/resourcegroups", views.resource_group_list, name="resource-group-list"),
]
