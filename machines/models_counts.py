"""The fleet's counts summary: machines (and tagged machines) per resource group, location, OS and *recorded* status
(docs/decisions.md 122, docs/status-engine.md §8).

Imported by ``machines.models`` (import from there). The rows are written by database triggers on the machine and tag
tables (migration ``0013_fleet_counts``), never by Python: every write that changes a machine's group, location, OS
or recorded status, creates or deletes a machine, or adds, changes or removes a tag appends ``±1`` rows to
``FleetCountDelta`` in the same transaction. ``machines.fleet_counts`` folds them into ``FleetCount`` and reads
both. ``tag_key`` is empty for the row of the machine itself, else the tag's key in lower case (with its value).
Group ids are plain numbers, not foreign keys: a deleted group's deltas outlive it until they are folded to zero.
"""

from django.db import models

DIMENSIONS = ("resource_group_id", "location", "os_name", "status", "tag_key", "tag_value")


class FleetDimensions(models.Model):
    """What a count is kept by (``DIMENSIONS``), shared by the folded rows and the deltas."""

    resource_group_id = models.BigIntegerField()
    location = models.CharField(max_length=40)
    os_name = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    tag_key = models.CharField(max_length=512)
    tag_value = models.CharField(max_length=256)

    class Meta:
        abstract = True


class FleetCount(FleetDimensions):
    """The folded summary: ``count`` machines (or tags) with these dimensions, as of the last compaction."""

    count = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=list(DIMENSIONS), name="fleet_count_dimensions_unique")]
        indexes = [models.Index(fields=["tag_key", "tag_value"], name="fleet_count_tag_idx")]

    def __str__(self) -> str:
        return f"{self.resource_group_id}/{self.location}/{self.os_name}/{self.status}/{self.tag_key}: {self.count}"


class FleetCountDelta(FleetDimensions):
    """A change not yet folded into ``FleetCount`` (appended by the triggers; no row is ever updated, so writers
    never wait on each other here)."""

    delta = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["tag_key", "tag_value"], name="fleet_count_delta_tag_idx")]

    def __str__(self) -> str:
        return f"{self.resource_group_id}/{self.location}/{self.os_name}/{self.status}/{self.tag_key}: {self.delta:+d}"
