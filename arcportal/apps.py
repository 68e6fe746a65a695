from django.apps import AppConfig


class ArcPortalConfig(AppConfig):
    name = "arcportal"
    verbose_name = "ArcPortal"
