"""Quote filters for the script templates: ``{{ value|sh_quote }}`` and ``{{ value|ps_quote }}``.

The templates render with autoescape off; every user value in them goes through one of these filters.
"""

from django import template

from onboarding import quoting

register = template.Library()


@register.filter
def sh_quote(value) -> str:
    return quoting.sh_quote(str(value))


@register.filter
def ps_quote(value) -> str:
    return quoting.ps_quote(str(value))
