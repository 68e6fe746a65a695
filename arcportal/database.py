"""Per-connection settings of the portal's database sessions (``connection_created``, wired in ``apps.py``).

PostgreSQL: JIT off unless ``ARC_POSTGRES_JIT`` (docs/decisions.md 126). The portal's queries are interactive, a few
to a few hundred milliseconds; PostgreSQL JIT-compiles any statement whose *estimated* cost passes
``jit_above_cost``, and the blade's counts statement (whose estimate counts every ``LIMIT`` of its index walks in full)
spent ~50 ms compiling to run in 3. Sent as one ``SET`` on the new connection (not a startup option, which
connection poolers such as PgBouncer refuse), through the driver's own cursor so no query log counts it.
"""

from __future__ import annotations

from django.conf import settings


def database_session_settings(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql" and not getattr(settings, "ARC_POSTGRES_JIT", False):
        with connection.connection.cursor() as cursor:
            cursor.execute("SET jit = off")
