"""Extension handlers: what the agent can install on this machine (docs/extensions.md, "The handler interface").

A handler is a class with ``publisher`` and ``type`` (the extension's ``Publisher/Type``) built with a
``HandlerContext`` and offering two operations, each returning a ``HandlerResult``:

* ``enable(settings, protected, workdir, timeout)`` — install or update: ``settings`` is the public settings
  object, ``protected`` the decrypted protectedSettings (in memory only: a handler must not write or log it),
  ``workdir`` a fresh directory for this sequence (``extensions/<Publisher.Type>/<version>/download/<sequence>/``),
  ``timeout`` the seconds it may take (``extensions.timeoutSeconds``);
* ``uninstall(handler_dir)`` — remove everything the handler put on the machine (``extensions/<Publisher.Type>/``).

Register a new class in ``HANDLERS`` under ``"publisher/type"`` in lower case. The extension manager checks the
local policy, decrypts, records the operation in flight, calls the handler in its worker thread (heartbeats go on)
and reports the result.
"""

from __future__ import annotations

from azcmagent.handlers.base import Handler, HandlerContext, HandlerResult, WindowsOnlyHandler
from azcmagent.handlers.customscript import CustomScriptHandler

__all__ = ["HANDLERS", "Handler", "HandlerContext", "HandlerResult", "handler_class"]

HANDLERS: dict[str, type[Handler]] = {
    f"{cls.publisher}/{cls.type}".lower(): cls for cls in (CustomScriptHandler, WindowsOnlyHandler)
}


def handler_class(publisher: str, type_: str) -> type[Handler] | None:
    """The handler registered for ``Publisher/Type`` (case-insensitive), or None."""
    return HANDLERS.get(f"{publisher}/{type_}".lower())
