"""Resource Graph Explorer: the query box, Run, results with paging, Download CSV, Charts, samples.

One URL serves the page and, for HTMX requests, only the results (``graph_results.html``); without JavaScript every
button is a plain form submission. Queries run through the same engine as the ARM endpoint, as the signed-in user
(``readable_scopes``), at the request's instant.
"""

from __future__ import annotations

import csv
import json
import math

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from arcportal.htmx import is_partial
from machines.graph.charts import bar_svg, chart_data, donut_svg
from machines.graph.errors import GraphQueryError
from machines.graph.executor import MAX_TOP, resource_graph_query
from machines.graph.samples import BY_KEY, EXPLORER_SAMPLES, MICROSOFT_SAMPLES
from machines.graph.visibility import readable_scopes

PAGE_SIZE = 50
CSV_MAX_ROWS = 50_000
VIEWS = ("table", "chart-bar", "chart-donut")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _error_context(query: str, error: GraphQueryError) -> dict:
    position = error.position
    context: dict = {"error": error, "error_details": [d for d in error.details if d.get("code") != "InvalidQuery"]}
    if position:
        line, column = position
        lines = query.split("\n")
        if 1 <= line <= len(lines):
            context.update(error_line=line, error_column=column, error_text=lines[line - 1],
                           error_caret=" " * (column - 1) + "^")  # fmt: skip
    return context


def _run(request: HttpRequest, query: str, page: int, view: str) -> tuple[dict, int]:
    scopes = readable_scopes(request.user)
    charting = view.startswith("chart")
    try:
        result = resource_graph_query(
            query=query,
            scopes=scopes,
            now=timezone.now(),
            top=MAX_TOP if charting else PAGE_SIZE,
            skip=0 if charting else (page - 1) * PAGE_SIZE,
        )
    except GraphQueryError as exc:
        return _error_context(query, exc), 400
    columns = [(c.name, c.type) for c in result.columns]
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    context = {
        "result": result,
        "columns": columns,
        "rows": [[_cell(v) for v in row] for row in result.rows],
        "total": result.total,
        "page": page,
        "pages": pages,
        "first_row": result.offset + 1 if result.rows else 0,
        "last_row": result.offset + len(result.rows),
    }
    if charting:
        data = chart_data(columns, result.rows)
        if data is not None:
            svg = donut_svg(data) if view == "chart-donut" else bar_svg(data)
            context["chart_svg"] = mark_safe(svg)  # numbers and escaped text only (machines.graph.charts)
            context["chart"] = data
    return context, 200


@require_http_methods(["GET", "POST"])
def resource_graph_explorer(request: HttpRequest) -> HttpResponse:
    """GET ``?query=`` or ``?sample=`` opens (and runs) a query; POST runs the query box."""
    source = request.POST if request.method == "POST" else request.GET
    sample = BY_KEY.get(source.get("sample", ""))
    query = source.get("query", "")
    if sample is not None and not query:
        query = sample.query
    view = source.get("switch") or source.get("view", "")  # a tab or chart button, else the view shown
    if view not in VIEWS:
        view = f"chart-{sample.chart}" if sample is not None and sample.chart else "table"
    try:
        page = max(1, min(int(source.get("page", "1")), 10**6))
    except ValueError:
        page = 1
    context: dict = {
        "query": query,
        "view": view,
        "samples": EXPLORER_SAMPLES,
        "microsoft_samples": MICROSOFT_SAMPLES,
        "page_size": PAGE_SIZE,
    }
    status = 200
    if query.strip():
        results, status = _run(request, query, page, view)
        context.update(results, ran=True)
    template = "machines/graph/partials/graph_results.html" if is_partial(request) else "machines/graph/explorer.html"
    return render(request, template, context, status=status)


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value: str) -> str:
    """Cells a spreadsheet would run as a formula get a leading apostrophe (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_POST
def resource_graph_csv(request: HttpRequest) -> HttpResponse:
    """Every row of the query (up to 50,000), as CSV."""
    query = request.POST.get("query", "")
    scopes = readable_scopes(request.user)
    now = timezone.now()
    try:
        first = resource_graph_query(query=query, scopes=scopes, now=now, top=MAX_TOP)
    except GraphQueryError as exc:
        return HttpResponse(f"{exc.message}\n", status=400, content_type="text/plain; charset=utf-8")

    def rows():
        writer = csv.writer(_Echo())
        yield writer.writerow([c.name for c in first.columns])
        page, written = first, 0
        while True:
            for row in page.rows:
                if written >= CSV_MAX_ROWS:
                    return
                written += 1
                yield writer.writerow([_csv_cell(_cell(v)) for v in row])
            if not page.skip_token:
                return
            page = resource_graph_query(query=query, scopes=scopes, now=now, top=MAX_TOP, skip_token=page.skip_token)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="resource-graph-{now:%Y%m%d-%H%M%S}.csv"'
    return response
