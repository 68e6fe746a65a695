"""Panels that higher apps add to a machine's Overview page.

The Overview is machines'; what onboarding knows about a machine (how it was onboarded, by which script) is
onboarding's, and machines may not import onboarding. So an app registers a provider in its ``AppConfig.ready``
(``machine_panel_register``), and the Overview view renders every registered panel (``machine_panels``). A provider
runs its reads in its own selectors, never in a template tag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MachinePanel:
    """A template to include on the Overview, rendered with ``machine`` and ``context``."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


MachinePanelProvider = Callable[[Any], MachinePanel]
_PROVIDERS: list[MachinePanelProvider] = []


def machine_panel_register(provider: MachinePanelProvider) -> MachinePanelProvider:
    """Add ``provider`` (machine → ``MachinePanel``) to every Overview, once, in registration order."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def machine_panels(machine) -> list[MachinePanel]:
    return [provider(machine) for provider in _PROVIDERS]
