"""The environment of a real agent process, or of an onboarding script, started by a test.

It inherits this process's environment minus what would make it talk to or trust something else: CA bundles (the
agent trusts exactly the portal CA it was given; `requests` inside pip lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
override pip's ``--cert``), proxies (every request goes to 127.0.0.1), and the settings of the portal, of pip and
of another agent (``ARC_``, ``DJANGO_``, ``PIP_``, ``AZCMAGENT_``).
"""

from __future__ import annotations

import os

DROPPED = frozenset(
    {
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    }
)
DROPPED_PREFIXES = ("AZCMAGENT_", "ARC_", "DJANGO_", "PIP_")


def agent_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith(DROPPED_PREFIXES)}
    env.update(extra)
    return env
