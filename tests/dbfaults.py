"""``database_down()``: every query of the test's connection fails as if the server had gone away (with ``tables``,
only the queries that read those tables)."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import OperationalError, connection


@contextmanager
def database_down(*, tables: tuple[str, ...] = ()):
    def refuse(execute, sql, params, many, context):
        if not tables or any(table in sql for table in tables):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield
