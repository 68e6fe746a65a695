"""Run commands of a machine and the ARM asynchronous operations the agent carries out (docs/extensions.md).

Imported by ``machines.models`` (import from there). Fields, constraints and ``__str__`` only: state changes live in
``machines.services.runcommands`` / ``operations``.
"""

import uuid

from django.db import models

from arcportal.arm import ids
from machines.lookups import AsciiLower


class RunCommand(models.Model):
    """``Microsoft.HybridCompute/machines/runCommands``: a script the agent runs, with its last result."""

    machine = models.ForeignKey("machines.Machine", on_delete=models.CASCADE, related_name="run_commands")
    name = models.CharField(max_length=64)
    location = models.CharField(max_length=40)
    tags = models.JSONField(default=dict, blank=True)
    script = models.TextField(blank=True, default="")
    script_uri = models.TextField(blank=True, default="")
    command_id = models.CharField(max_length=200, blank=True, default="")
    parameters = models.JSONField(default=list, blank=True)  # [{"name", "value"}]
    # Fernet ciphertext of the protectedParameters JSON list; never returned by any response.
    protected_parameters_encrypted = models.TextField(blank=True, default="")
    run_as_user = models.CharField(max_length=200, blank=True, default="")
    async_execution = models.BooleanField(default=False)
    timeout_in_seconds = models.PositiveIntegerField(default=0)
    output_blob_uri = models.TextField(blank=True, default="")
    error_blob_uri = models.TextField(blank=True, default="")
    provisioning_state = models.CharField(max_length=20, default="Creating")
    # The instance view, from the agent's reports.
    execution_state = models.CharField(max_length=20, default="Pending")
    execution_message = models.TextField(blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    # The goal-state channel, as for extensions.
    sequence = models.PositiveIntegerField(default=0)
    operation = models.CharField(max_length=10, blank=True, default="")
    reported_sequence = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("machine", AsciiLower("name"), name="run_command_name_unique_ascii_ci_per_machine"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arm_id(self) -> str:
        group = self.machine.resource_group
        machine = ids.machine_id(str(group.subscription.subscription_id), group.name, self.machine.name)
        return f"{machine}/runCommands/{self.name}"


class AsyncOperation(models.Model):
    """One ARM long-running operation (``Azure-AsyncOperation``) on an extension or a run command.

    It ends when the agent reports the operation's sequence, at ``deadline`` (Failed), at once when the machine is
    not Connected (Failed), or when the machine is deleted (Canceled: ``machine`` becomes NULL).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    machine = models.ForeignKey(
        "machines.Machine", on_delete=models.SET_NULL, related_name="async_operations", null=True, blank=True
    )
    subscription_id = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=1000)
    kind = models.CharField(max_length=20)  # extensions | runCommands
    name = models.CharField(max_length=64)
    action = models.CharField(max_length=10)  # install | update | delete | run
    sequence = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, default="InProgress")
    error = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["machine", "kind", "name", "status"], name="async_op_machine_entry_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.kind}/{self.name} #{self.sequence}: {self.status}"
