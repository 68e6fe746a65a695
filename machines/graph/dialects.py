"""The SQL dialects the compiler writes for, by Django's ``connection.vendor``. Pure."""

from machines.graph.dialect_base import Dialect
from machines.graph.postgresql import PostgreSQL
from machines.graph.sqlite import SQLite
from machines.graph.sqlite_functions import FUNCTIONS as SQLITE_FUNCTIONS

POSTGRESQL = PostgreSQL()
SQLITE = SQLite()
DIALECTS: dict[str, Dialect] = {"postgresql": POSTGRESQL, "sqlite": SQLITE}

__all__ = ["DIALECTS", "POSTGRESQL", "SQLITE", "SQLITE_FUNCTIONS", "Dialect"]
