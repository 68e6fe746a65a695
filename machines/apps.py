from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "machines"
    verbose_name = "Machines – Azure Arc"

    def ready(self) -> None:
        from machines import checks  # noqa: F401  (registers system checks)
