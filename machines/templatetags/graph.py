"""Template tags of the Resource Graph pages: the Machines blade's **Open query** link."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html

from machines.graph.from_filters import machine_filters_kql

register = template.Library()

QUERY_ICON = (
    "M2 3h12v1H2zm0 3h8v1H2zm0 3h5v1H2zm9.5-1a2.5 2.5 0 0 1 2 4l1.9 1.9-.7.7-1.9-1.9a2.5 2.5 0 1 1-1.3-4.7z"
    "m0 1a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"
)


@register.simple_tag
def open_query_link(filterset) -> str:
    """The command bar's **Open query**: the blade's current (valid) filters as KQL in Resource Graph Explorer."""
    cleaned = filterset.form.cleaned_data if filterset is not None and filterset.is_valid() else {}
    url = reverse("machines:resource-graph") + "?" + urlencode({"query": machine_filters_kql(cleaned)})
    return format_html(
        '<a class="cmd" href="{}"><svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true"'
        ' focusable="false"><path fill="currentColor" fill-rule="evenodd" d="{}"/></svg> Open query</a>',
        url,
        QUERY_ICON,
    )
