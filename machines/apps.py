from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "machines"
    verbose_name = "Machines – Azure Arc"

    def ready(self) -> None:
        # System checks, and the tasks: registered in every process (web too), so services can enqueue a task by
        # its name (machines.webhooks) without importing the tasks module, which imports them. Machine identities
        # sign in at identity's token endpoint, which asks machines whether they may (machines.managed_identity).
        from identity.machine_identities import register_resolver
        from machines import checks, tasks  # noqa: F401
        from machines.managed_identity import machine_credential_resolve

        register_resolver(machine_credential_resolve)
