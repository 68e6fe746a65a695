from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "machines"
    verbose_name = "Machines – Azure Arc"

    def ready(self) -> None:
        # System checks, and the tasks: registered in every process (web too), so services can enqueue a task by
        # its name (machines.webhooks) without importing the tasks module, which imports them.
        from machines import checks, tasks  # noqa: F401
