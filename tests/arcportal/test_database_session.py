"""The portal's database sessions (arcportal/database.py): PostgreSQL runs without JIT unless ARC_POSTGRES_JIT."""

from contextlib import contextmanager

import pytest
from django.db import connection

from arcportal.database import database_session_settings


class Recorder:
    def __init__(self, vendor):
        self.vendor, self.sql = vendor, []
        self.connection = self

    @contextmanager
    def cursor(self):
        yield self

    def execute(self, sql):
        self.sql.append(sql)


@pytest.mark.parametrize(("vendor", "jit", "expected"), [("postgresql", False, ["SET jit = off"]),
                                                          ("postgresql", True, []), ("sqlite", False, [])])  # fmt: skip
def test_a_new_postgresql_session_turns_jit_off_unless_asked(settings, vendor, jit, expected):
    settings.ARC_POSTGRES_JIT = jit
    recorder = Recorder(vendor)
    database_session_settings(sender=None, connection=recorder)
    assert recorder.sql == expected


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting (CI runs it there)")
def test_a_real_postgresql_session_has_it():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
