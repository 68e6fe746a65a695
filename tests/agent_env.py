"""The environment of a real agent process, or of an onboarding script, started by a test.

``agent_environment`` inherits this process's environment minus what would make it talk to or trust something else:
CA bundles, proxies (every request goes to 127.0.0.1), and the settings of the portal, of pip and of another agent
(``ARC_``, ``DJANGO_``, ``PIP_``, ``AZCMAGENT_``). ``host_environment`` is what a user's host has on top of that:
every CA-bundle variable pointing at the system's bundle (which does not hold the portal CA), as corporate machines
and CI images set them. The scripts, the installer and the agent must trust the pinned portal CA whatever these say.
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
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HOST_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "PIP_CERT")


def agent_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith(DROPPED_PREFIXES)}
    env.update(extra)
    return env


def host_environment(**extra: str) -> dict[str, str]:
    env = agent_environment(**dict.fromkeys(HOST_CA_VARIABLES, SYSTEM_CA_BUNDLE))
    env.update(extra)
    return env
