from django.db import models

from machines import status


class MachineStatus(models.TextChoices):
    """Stored as the ARM wire value; the portal shows ``status.portal_label``."""

    AWAITING = status.AWAITING, "Awaiting connection"
    CONNECTED = status.CONNECTED, "Connected"
    DISCONNECTED = status.DISCONNECTED, "Offline"
    EXPIRED = status.EXPIRED, "Expired"


class ProvisioningState(models.TextChoices):
    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


class OsType(models.TextChoices):
    WINDOWS = "windows", "Windows"
    LINUX = "linux", "Linux"
