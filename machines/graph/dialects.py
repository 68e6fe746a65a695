"""The SQL dialects the compiler writes for, by Django's ``connection.vendor``. Pure."""

from machines.graph.dialect_base import SQLITE_FUNCTIONS, Dialect
from machines.graph.postgresql import PostgreSQL
from machines.graph.sqlite import SQLite

POSTGRESQL = PostgreSQL()
SQLITE = SQLite()
DIALECTS: dict[str, Dialect] = {"postgresql": POSTGRESQL, "sqlite": SQLITE}

__all__ = ["DIALECTS", "POSTGRESQL", "SQLITE", "SQLITE_FUNCTIONS", "Dialect"]
