"""ARM names in SQL: case-insensitive with ASCII-only folding, the same on SQLite and PostgreSQL.

``arcportal.arm.ids.fold_name`` is the rule (``A``–``Z`` ↔ ``a``–``z``, every other character as it is). Django's
``iexact`` and ``Lower`` follow the database instead: SQLite's ``LIKE``/``lower()`` fold ASCII only, PostgreSQL's
``UPPER()``/``lower()`` fold whatever its ``LC_CTYPE`` says (all of Unicode under ``C.UTF-8``), so ``übersee`` and
``Übersee`` were one resource group on one database and two on the other, and a scope check in Python agreed with
neither. Here:

* ``AsciiLower(expr)``: ``lower()`` on SQLite (its built-in folds ASCII only), ``translate(expr, 'A…Z', 'a…z')`` on
  PostgreSQL (immutable and locale-independent, so it can back a unique index).
* ``name__iexact_ascii=value``: ``AsciiLower(name) = fold_name(value)``; the unique constraints use the same
  expression, so the lookup is served by their index on both databases.
"""

from __future__ import annotations

import string

from django.db.models import CharField, Func, Lookup, TextField

from arcportal.arm.ids import fold_name

_UPPER, _LOWER = string.ascii_uppercase, string.ascii_lowercase


class AsciiLower(Func):
    """ASCII letters lowered, everything else unchanged, in SQL (see the module docstring)."""

    function = "LOWER"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            function="TRANSLATE",
            template=f"%(function)s(%(expressions)s, '{_UPPER}', '{_LOWER}')",
            **extra_context,
        )


@CharField.register_lookup
@TextField.register_lookup
class IExactAscii(Lookup):
    """``field__iexact_ascii=value``: equal once both sides are folded with ``fold_name``."""

    lookup_name = "iexact_ascii"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs_sql, lhs_params = compiler.compile(AsciiLower(self.lhs))
        if hasattr(self.rhs, "resolve_expression"):
            rhs_sql, rhs_params = compiler.compile(AsciiLower(self.rhs))
            return f"{lhs_sql} = {rhs_sql}", (*lhs_params, *rhs_params)
        return f"{lhs_sql} = %s", (*lhs_params, fold_name(str(self.rhs)))
