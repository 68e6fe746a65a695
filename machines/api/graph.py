"""``POST /providers/Microsoft.ResourceGraph/resources``: Resource Graph queries, as ``azure-mgmt-resourcegraph`` sends
them (``QueryRequest``) and reads them back (``QueryResponse``).

The caller's rows are those ``arcportal.authz.can`` lets it read (``machines.graph.visibility.readable_scopes``),
narrowed to ``subscriptions`` when the request names some. Query errors answer 400 ``BadRequest`` with the
engine's ``details`` (``ParserFailure`` with line and column, ``InvalidQuery`` naming what is unknown …).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from arcportal.arm.errors import ArmError, error_body
from arcportal.arm.schema import ArmAutoSchema, error_responses
from arcportal.arm.views import ArmApiView
from machines.graph.errors import GraphQueryError
from machines.graph.executor import GraphResult, resource_graph_query
from machines.graph.visibility import readable_scopes

FORMATS = ("objectArray", "table")
COLUMN_TYPES = {"string": "string", "long": "integer", "real": "number", "bool": "boolean", "dynamic": "object",
                "datetime": "datetime", "timespan": "timespan"}  # fmt: skip


QUERY_REQUEST = inline_serializer(
    "QueryRequest",
    {
        "subscriptions": serializers.ListField(child=serializers.UUIDField(), required=False, max_length=1000),
        "managementGroups": serializers.ListField(child=serializers.CharField(), required=False),
        "query": serializers.CharField(help_text="The KQL query (at most 10,000 characters)."),
        "options": inline_serializer(
            "QueryRequestOptions",
            {
                "$skipToken": serializers.CharField(required=False),
                "$top": serializers.IntegerField(required=False, min_value=1, max_value=1000),
                "$skip": serializers.IntegerField(required=False, min_value=0),
                "resultFormat": serializers.ChoiceField(choices=FORMATS, required=False),
                "allowPartialScopes": serializers.BooleanField(required=False),
            },
            required=False,
        ),
        "facets": serializers.ListField(child=serializers.DictField(), required=False),
    },
)
QUERY_RESPONSE = inline_serializer(
    "QueryResponse",
    {
        "totalRecords": serializers.IntegerField(),
        "count": serializers.IntegerField(),
        "resultTruncated": serializers.ChoiceField(choices=["true", "false"]),
        "$skipToken": serializers.CharField(required=False),
        "data": serializers.JSONField(help_text="Rows as objects, or {columns, rows} for resultFormat=table."),
        "facets": serializers.ListField(child=serializers.DictField()),
    },
)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` object by its wire names (``$top``, ``$skip``, ``$skipToken``, ``resultFormat``)."""
    options = body.get("options")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ArmError("options must be an object.", code="InvalidRequestContent", status=400, target="options")
    for name in ("$top", "$skip"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ArmError(f"options.{name} must be an integer.", code="InvalidRequestContent", status=400,
                           target=f"options.{name}")  # fmt: skip
    token = options.get("$skipToken")
    if token is not None and not isinstance(token, str):
        raise ArmError("options.$skipToken must be a string.", code="InvalidRequestContent", status=400)
    result_format = options.get("resultFormat") or "objectArray"
    if result_format not in FORMATS:
        raise ArmError(f"options.resultFormat must be one of {', '.join(FORMATS)}.", code="InvalidRequestContent",
                       status=400, target="options.resultFormat")  # fmt: skip
    return {"top": options.get("$top"), "skip": options.get("$skip"), "skip_token": token or None,
            "format": result_format}  # fmt: skip


def _subscriptions(body: dict[str, Any]) -> list[str] | None:
    values = body.get("subscriptions")
    if values is None:
        return None
    if not isinstance(values, list) or len(values) > 1000:
        raise ArmError("subscriptions must be a list of at most 1,000 subscription ids.",
                       code="InvalidRequestContent", status=400, target="subscriptions")  # fmt: skip
    for value in values:
        if not _is_guid(value):
            raise ArmError(f"'{str(value)[:100]}' is not a subscription id (a GUID).", code="InvalidSubscriptionId",
                           status=400, target="subscriptions")  # fmt: skip
    return [str(v) for v in values]


def _is_guid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return isinstance(value, str)


def render(result: GraphResult, result_format: str) -> dict[str, Any]:
    if result_format == "table":
        data: Any = {
            "columns": [{"name": c.name, "type": COLUMN_TYPES.get(c.type, "string")} for c in result.columns],
            "rows": result.rows,
        }
    else:
        data = result.objects()
    body: dict[str, Any] = {"totalRecords": result.total, "count": len(result.rows), "resultTruncated": "false"}
    if result.skip_token:
        body["$skipToken"] = result.skip_token
    body.update(data=data, facets=[])
    return body


class ResourcesApi(ArmApiView):
    """Resource Graph's ``Resources`` operation."""

    schema = ArmAutoSchema()
    operation_id = "Resources"
    rbac_action = "Microsoft.ResourceGraph/resources/read"

    @extend_schema(request=QUERY_REQUEST, responses={200: QUERY_RESPONSE, **error_responses()})
    def post(self, request):
        try:
            body = self.json_body()
        except RecursionError:  # json.loads recurses once per level of nesting
            raise ArmError("The request content is nested too deeply.", code="InvalidRequestContent",
                           status=400) from None  # fmt: skip
        query = body.get("query")
        if not isinstance(query, str):
            raise ArmError("The request needs a query (a string).", code="InvalidRequestContent", status=400,
                           target="query")  # fmt: skip
        options = _options(body)
        try:
            result = resource_graph_query(
                query=query,
                scopes=readable_scopes(request.user),
                now=timezone.now(),
                subscriptions=_subscriptions(body),
                top=options.get("top"),
                skip=options.get("skip"),
                skip_token=options.get("skip_token"),
            )
        except GraphQueryError as exc:
            return Response(error_body(exc.code, exc.message, details=exc.details), status=400)
        return Response(render(result, options.get("format", "objectArray")))
