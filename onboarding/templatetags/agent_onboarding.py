"""``{% machine_onboarding_summary machine as onboarding %}`` for the machine page's onboarding panel."""

from django import template

from onboarding.selectors import machine_onboarding_summary as _summary

register = template.Library()


@register.simple_tag
def machine_onboarding_summary(machine):
    return _summary(machine)
