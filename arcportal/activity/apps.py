from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """The activity log: one event per operation, written by every layer (docs/governance.md, "Activity log")."""

    name = "arcportal.activity"
    label = "activity"
    verbose_name = "Activity log"
    default_auto_field = "django.db.models.BigAutoField"
