"""DRF adapter of ``arcportal.textguard``: the one JSON parser of the ARM plane and of every DRF view.

``GuardedJSONParser`` (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``) and ``guarded_json`` (what
``ArmApiView.json_body`` calls) refuse bodies over 1 MiB, nesting deeper than 32, NUL, lone surrogates and huge
numbers with 400 ``InvalidRequestContent`` (413 ``RequestContentTooLarge`` for size), before any serializer runs.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from arcportal import textguard
from arcportal.arm.errors import ArmError


def guarded_json(raw: bytes, *, limits: textguard.Limits = textguard.DEFAULT_LIMITS) -> Any:
    """Parse ``raw`` under the text guard; ``ArmError`` (400 or 413) when refused."""
    if len(raw) > limits.max_bytes:
        raise ArmError(
            f"The request content is larger than {limits.max_bytes} bytes.", code="RequestContentTooLarge", status=413
        )
    try:
        return textguard.json_loads(raw, limits=limits)
    except textguard.TextRefused as exc:
        prefix = "could not be deserialized" if exc.message.startswith("not valid JSON") else "was refused"
        raise ArmError(
            f"The request content {prefix}: {exc}",
            code="InvalidRequestContent",
            status=400,
            target=exc.target or None,
        ) from exc


class GuardedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return guarded_json(raw)
        except ArmError as exc:
            raise ParseError(exc.message) from exc
