from django.apps import AppConfig


class ArcPortalConfig(AppConfig):
    name = "arcportal"
    verbose_name = "ArcPortal"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from arcportal.database import database_session_settings

        connection_created.connect(database_session_settings, dispatch_uid="arcportal-database-session")
