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

        # After migrate or flush: no machine, no count (SQLite's flush can leave the triggers' deltas behind).
        from django.db.models.signals import post_migrate

        from machines.fleet_counts import fleet_counts_clear_if_no_machines

        post_migrate.connect(fleet_counts_clear_if_no_machines, sender=self, dispatch_uid="fleet-counts-clear")
