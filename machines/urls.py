from django.urls import path

from machines import (
    governance_urls,
    views,
    views_extensions,
    views_graph,
    views_iam,
    views_machine,
    views_resource_groups,
    views_run_command,
)

app_name = "machines"

MACHINE = "portal/subscriptions/<str:subscription_id>/resourceGroups/<str:resource_group>"
MACHINE += "/providers/Microsoft.HybridCompute/machines/<str:name>"

urlpatterns = [
    path("", views.machine_list, name="machine-list"),
    path("portal/machines/export.csv", views.machine_export, name="machine-export"),
    path("portal/machines/assign-tags", views.machine_assign_tags, name="machine-assign-tags"),
    path("portal/machines/delete", views.machine_delete, name="machine-delete"),
    path(MACHINE, views_machine.machine_detail, name="machine-detail"),
    path(f"{MACHINE}/tags", views_machine.machine_tags, name="machine-tags"),
    path(f"{MACHINE}/iam", views_iam.machine_iam, name="machine-iam"),
    path("portal/subscriptions/<str:subscription_id>/iam", views_iam.subscription_iam, name="subscription-iam"),
    path(
        "portal/subscriptions/<str:subscription_id>/resourceGroups/<str:resource_group>/iam",
        views_iam.resource_group_iam,
        name="resource-group-iam",
    ),
    path(f"{MACHINE}/properties", views_machine.machine_properties, name="machine-properties"),
    # Extensions: ':' is not allowed in extension names, so these never shadow an extension's own page.
    path(f"{MACHINE}/extensions", views_extensions.machine_extensions, name="machine-extensions"),
    path(f"{MACHINE}/extensions:add", views_extensions.machine_extension_add, name="machine-extension-add"),
    path(
        f"{MACHINE}/extensions:add/<slug:type_key>",
        views_extensions.machine_extension_create,
        name="machine-extension-create",
    ),
    path(
        f"{MACHINE}/extensions:uninstall",
        views_extensions.machine_extension_uninstall,
        name="machine-extension-uninstall",
    ),
    path(f"{MACHINE}/runcommand", views_run_command.machine_run_command, name="machine-run-command"),
    path(
        f"{MACHINE}/runcommand/<str:run_name>",
        views_run_command.machine_run_command_detail,
        name="machine-run-command-detail",
    ),
    path(
        f"{MACHINE}/extensions/<str:extension_name>",
        views_extensions.machine_extension_detail,
        name="machine-extension-detail",
    ),
    path("portal/resourcegroups", views_resource_groups.resource_group_list, name="resource-group-list"),
    path("portal/resourcegraph", views_graph.resource_graph_explorer, name="resource-graph"),
    path("portal/resourcegraph/export.csv", views_graph.resource_graph_csv, name="resource-graph-csv"),
    path(
        "portal/subscriptions/<str:subscription_id>/resourceGroups/<str:resource_group>/delete",
        views_resource_groups.resource_group_delete,
        name="resource-group-delete",
    ),
]

# Activity log and Locks pages (issue 13).
urlpatterns += governance_urls.urlpatterns
