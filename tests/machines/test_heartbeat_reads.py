"""The heartbeat endpoint's read (``machines.heartbeat_reads.machine_for_heartbeat``): one query, the right row,
prepared."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from machines import heartbeat_reads
from tests.machines.factories import MachineFactory

pytestmark = pytest.mark.django_db


def test_it_reads_the_machine_by_vm_id_in_one_query(django_assert_num_queries):
    machine = MachineFactory(vm_id=uuid.uuid4(), detected_properties={"model": "X1"})
    MachineFactory(vm_id=uuid.uuid4())  # another machine is not returned
    with django_assert_num_queries(1):
        found = heartbeat_reads.machine_for_heartbeat(vm_id=str(machine.vm_id).upper())
    assert (found.pk, found.vm_id, found.status) == (machine.pk, machine.vm_id, machine.status)
    assert found.detected_properties == {"model": "X1"} and found.last_heartbeat_at == machine.last_heartbeat_at
    sql, _, _ = heartbeat_reads._heartbeat_query("default")
    assert "ORDER BY" not in sql and "WHERE" in sql


def test_an_unknown_or_malformed_vm_id_is_none():
    assert heartbeat_reads.machine_for_heartbeat(vm_id=str(uuid.uuid4())) is None
    assert heartbeat_reads.machine_for_heartbeat(vm_id="not-a-guid") is None


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's (CI runs it)")
@pytest.mark.parametrize("enabled", [True, False])
def test_on_postgresql_the_query_is_a_prepared_statement_unless_turned_off(settings, enabled):
    settings.ARC_HEARTBEAT_PREPARED_STATEMENTS = enabled
    machine = MachineFactory(vm_id=uuid.uuid4())
    connection.connection.execute("DEALLOCATE ALL")  # psycopg's own cache is per connection: start clean
    connection.connection._prepared.clear()
    assert heartbeat_reads.machine_for_heartbeat(vm_id=str(machine.vm_id)).pk == machine.pk
    prepared = [sql for sql in _prepared_statements() if "machines_machine" in sql and '"vm_id" = $1' in sql]
    assert len(prepared) == (1 if enabled else 0)
