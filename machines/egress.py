"""Where the portal may connect on a user's behalf (webhook receivers): public unicast addresses only. Pure.

A webhook URL is resolved and **every** address it resolves to must be public (not loopback, link-local — the cloud
metadata service at 169.254.169.254 —, private, shared 100.64/10, multicast, reserved or unspecified, IPv4-mapped
IPv6 forms included), or lie in a network the allow-list names. The check runs when a webhook is created and again
before every delivery, which then connects to the address it checked (``pinned``), with the URL's host name in
``Host`` and in TLS (SNI and certificate check): a name that resolves elsewhere a moment later (DNS rebinding)
changes nothing.

The allow-list (``ARC_WEBHOOK_ALLOWED_HOSTS``) names receivers that may be internal: a host name (``hooks.corp``),
a domain suffix (``.corp.example``: itself and every name under it), an IP address or a network (``10.20.0.0/16``).
Names on the list are not checked and are connected to as usual.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressNotAllowed(ValueError):
    """The URL's host is not a place the portal may connect to (the message says why)."""


@dataclass(frozen=True)
class Target:
    """Where to connect: ``address`` checked (``None``: the host is allow-listed by name, resolve as usual)."""

    host: str
    port: int
    address: str | None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or ``None`` when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((label for failed, label in checks if failed), None)


def _allowed_names_and_networks(allow: Sequence[str]) -> tuple[list[str], list]:
    names, networks = [], []
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(entry.rstrip("."))
    return names, networks


def _name_allowed(host: str, names: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == name or (name.startswith(".") and (host == name[1:] or host.endswith(name))) for name in names)


def resolve_target(url: str, *, allow: Sequence[str] = ()) -> Target:
    """Resolve the URL's host and check every address (``AddressNotAllowed`` otherwise)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressNotAllowed(f"Webhook URL not allowed: its port is not valid ({exc}).") from exc
    names, networks = _allowed_names_and_networks(allow)
    if _name_allowed(host, names):
        return Target(host=host, port=port, address=None)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressNotAllowed(f"Webhook URL not allowed: '{host}' could not be resolved ({exc}).") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise AddressNotAllowed(f"Webhook URL not allowed: '{host}' could not be resolved (no address).")
    for ip in addresses:
        if any(ip in network for network in networks):
            continue
        problem = address_problem(ip)
        if problem:
            shown = host if str(ip) == host else f"'{host}' resolves to {ip}, which"
            raise AddressNotAllowed(
                f"Webhook URL not allowed: {shown} is {problem}. Receivers must have public addresses unless "
                "ARC_WEBHOOK_ALLOWED_HOSTS names them."
            )
    return Target(host=host, port=port, address=str(addresses[0]))


def pinned(url: str, target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(url, headers, extensions)`` of a request to ``target.address`` for ``url``: the address in the URL, the
    host name in ``Host`` and, for https, in httpx's ``sni_hostname`` (TLS SNI and the certificate's name check)."""
    if target.address is None:
        return url, {}, {}
    parts = urlsplit(url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{address}:{parts.port}" if parts.port else address
    host_header = f"{target.host}:{parts.port}" if parts.port else target.host
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions
