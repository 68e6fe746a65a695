"""gunicorn settings for whoever serves the portal with gunicorn: ``gunicorn -c python:arcportal.gunicorn_conf``
(``arcportal.serving.gunicorn_command``: the benches that compare it; ``manage.py serve`` and production use granian).

Only a server hook lives here; binds, workers and TLS files stay on the command line.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_cached: dict[str, tuple[tuple[float, ...], object]] = {}


def _mtime(path: str | None) -> float:
    if not path:
        return 0.0
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


def ssl_context(conf, default_ssl_context_factory):
    """One TLS context per worker process, built again only when the certificate, key or CA file changes.

    gunicorn's sync worker asks for a context for every connection it accepts, and its default builds a new one each
    time (the system CA store, then the certificate and key parsed from PEM): about a tenth of a worker's CPU under
    agent load (docs/performance.md, "Fleet simulator"). A renewed certificate still takes effect at the next
    connection: the files' modification times are part of the cache key."""
    stamp = (_mtime(conf.certfile), _mtime(conf.keyfile), _mtime(conf.ca_certs))
    with _lock:
        found = _cached.get("context")
        if found is None or found[0] != stamp:
            found = (stamp, default_ssl_context_factory())
            _cached["context"] = found
        return found[1]
