from django.db import models

from machines import status


class MachineStatus(models.TextChoices):
    """Stored as the ARM wire value, labelled with the portal's word (``machines.status.VOCABULARY``)."""

    AWAITING = status.AWAITING, status.status_name(status.AWAITING)
    CONNECTED = status.CONNECTED, status.status_name(status.CONNECTED)
    DISCONNECTED = status.DISCONNECTED, status.status_name(status.DISCONNECTED)
    EXPIRED = status.EXPIRED, status.status_name(status.EXPIRED)


class ProvisioningState(models.TextChoices):
    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


class OsType(models.TextChoices):
    WINDOWS = "windows", "Windows"
    LINUX = "linux", "Linux"
