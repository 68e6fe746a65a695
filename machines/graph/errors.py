"""Errors of the query engine, shaped as Resource Graph reports them (pure: no Django import).

Every error is a 400 ``BadRequest`` whose ``details`` say what went wrong: ``ParserFailure`` with ``line`` and
``column`` (1-based; ``characterPositionInLine`` is the 0-based column Resource Graph itself reports),
``InvalidQuery`` with the unknown table, column, function or operator by name, and specific codes for the limits
(``QueryTooLong``, ``InvalidTop``, ``QueryTimeout``, ``InvalidSkipToken``).
"""

from __future__ import annotations

from typing import Any

INVALID_QUERY_MESSAGE = (
    "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error "
    "before retrying."
)


class GraphQueryError(Exception):
    """A query that can't be run. ``details`` are the ARM error details (``code``, ``message`` and extra members)."""

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None, code: str = "BadRequest"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = list(details or [])

    @property
    def position(self) -> tuple[int, int] | None:
        """``(line, column)`` of the first detail that has one."""
        for detail in self.details:
            if "line" in detail and "column" in detail:
                return int(detail["line"]), int(detail["column"])
        return None

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


def parser_failure(message: str, *, line: int, column: int, token: str = "") -> GraphQueryError:
    detail = {
        "code": "ParserFailure",
        "message": message,
        "line": line,
        "column": column,
        "characterPositionInLine": column - 1,
    }
    if token:
        detail["token"] = token
    return GraphQueryError(
        f"Query is invalid: {message.rstrip('.')} (line {line}, column {column}).",
        details=[{"code": "InvalidQuery", "message": INVALID_QUERY_MESSAGE}, detail],
    )


def invalid_query(
    message: str, *, code: str = "InvalidQuery", name: str | None = None, pos: tuple[int, int] | None = None
) -> GraphQueryError:
    """A query that parses but names something unknown or unsupported (``code``: UnknownTable, UnknownColumn,
    UnknownFunction, UnsupportedOperator, InvalidArgument, TypeMismatch …)."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if name is not None:
        detail["name"] = name
    if pos is not None:
        detail["line"], detail["column"] = pos
        detail["characterPositionInLine"] = pos[1] - 1
    where = f" (line {pos[0]}, column {pos[1]})." if pos else "."
    return GraphQueryError(
        f"Query is invalid: {message.rstrip('.')}{where}",
        details=[{"code": "InvalidQuery", "message": INVALID_QUERY_MESSAGE}, detail],
    )


def limit_error(code: str, message: str) -> GraphQueryError:
    return GraphQueryError(message, details=[{"code": code, "message": message}])
