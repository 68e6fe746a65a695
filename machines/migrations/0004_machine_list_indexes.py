"""Indexes for the portal's Machines list on PostgreSQL (bench/list_page.py measures them).

* ``machine_heartbeat_desc_idx``: the list sorted by status is ``last_heartbeat_at DESC NULLS LAST, id`` (freshest
  heartbeat first, machines without one last); walking this index (forwards, or backwards for the reverse order)
  replaces a sort of the whole fleet, and serves the status-filtered, heartbeat-sorted pages too.
* ``machine_name_upper_trgm_idx``: the name search is ``name__icontains`` →
  ``UPPER("name"::text) LIKE UPPER('%…%')``; a trigram GIN index on that expression replaces a fleet-wide scan.
  pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner may create it.

SQLite can't put NULLS LAST in an index and has no trigram indexes, so both are PostgreSQL-only; the model state
is unchanged (they are access paths, not constraints).
"""

from django.db import migrations

INDEXES = {
    "machine_heartbeat_desc_idx": "ON machines_machine (last_heartbeat_at DESC NULLS LAST, id)",
    "machine_name_upper_trgm_idx": 'ON machines_machine USING gin ((UPPER("name"::text)) gin_trgm_ops)',
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("machines", "0003_machine_status_heartbeat_index"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
