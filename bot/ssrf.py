"""Keep feed fetches off private networks (server-side request forgery guard).

A feed URL is checked before any request, and the connection itself goes through
`GuardedResolver`, which resolves the host again and hands aiohttp only addresses that
passed the check. So a name that resolves to a public address for the check and to an
internal one a moment later (DNS rebinding) still cannot reach the internal one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

ALLOWLIST_ENV = "BRIEFBOT_ALLOW_PRIVATE_FEEDS"
ALLOWED_SCHEMES = frozenset({"http", "https"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]+$")


class GuardRefusal(Exception):
    """A URL or address the guard will not let the fetcher use.

    `kind` is "bad_url" (not an http(s) URL with a host) or "ssrf" (a non-public
    address that is not allowlisted). The message never contains URL credentials.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks the operator exempts from the private-address refusal."""

    hosts: frozenset[str] = field(default_factory=frozenset)
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def empty(cls) -> Allowlist:
        return cls()

    def allows_host(self, host: str) -> bool:
        return _normalise_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            a in net for a in candidates for net in self.networks if a.version == net.version
        )


def parse_allowlist(spec: str) -> Allowlist:
    """Parse a comma-separated list of hostnames, IP addresses and CIDR networks.

    Raises ValueError naming the first entry that is none of those.
    """
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in re.split(r"[,\s]+", spec):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = _normalise_host(entry)
        if not _HOSTNAME.match(host):
            raise ValueError(f"{ALLOWLIST_ENV}: {entry!r} is not a hostname, address or network")
        hosts.add(host)
    return Allowlist(frozenset(hosts), tuple(networks))


def allowlist_from_env(environ: Mapping[str, str] | None = None) -> Allowlist:
    env = os.environ if environ is None else environ
    return parse_allowlist(env.get(ALLOWLIST_ENV, ""))


def is_public_address(address: IPAddress) -> bool:
    """True for globally routable unicast addresses (also through an IPv4-mapped form)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public_address(address.ipv4_mapped)
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_address(address: IPAddress, allowlist: Allowlist) -> None:
    if not is_public_address(address) and not allowlist.allows_address(address):
        raise GuardRefusal("ssrf", f"refused to connect to non-public address {address}")


def check_url_shape(url: URL) -> str:
    """Refuse anything but http(s) with a host; return the normalised host."""
    if url.scheme.lower() not in ALLOWED_SCHEMES:
        scheme = url.scheme or "no scheme"
        raise GuardRefusal("bad_url", f"only http and https feeds are supported, not {scheme}")
    if not url.host:
        raise GuardRefusal("bad_url", "the feed URL has no host")
    return _normalise_host(url.host)


def check_url_syntax(url: str) -> str | None:
    """Why `url` cannot be a feed URL (scheme, host), or None; no DNS, no address check."""
    try:
        check_url_shape(URL(url.strip()))
    except GuardRefusal as refusal:
        return refusal.message
    except (ValueError, TypeError):
        return "the URL is not valid"
    return None


async def vet_url(url: URL, allowlist: Allowlist) -> None:
    """Check scheme, host and every address the host resolves to; raise GuardRefusal."""
    host = check_url_shape(url)
    if allowlist.allows_host(host):
        return
    literal = _ip_literal(host)
    if literal is not None:
        check_address(literal, allowlist)
        return
    for _fam, _proto, text, _port in await _getaddrinfo(host, url.port or 0, socket.AF_UNSPEC):
        check_address(ipaddress.ip_address(text), allowlist)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that returns only vetted addresses, or refuses the whole host."""

    def __init__(self, allowlist: Allowlist) -> None:
        self._allowlist = allowlist

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        trusted = self._allowlist.allows_host(host)
        results: list[ResolveResult] = []
        for fam, proto, text, resolved_port in await _getaddrinfo(host, port, family):
            address = ipaddress.ip_address(text)
            if not trusted:
                check_address(address, self._allowlist)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=resolved_port,
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return results

    async def close(self) -> None:
        return None


async def _getaddrinfo(host: str, port: int, family: int) -> list[tuple[int, int, str, int]]:
    """Resolve to (family, proto, address, port) tuples."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"could not resolve host {host}") from exc
    # Scoped IPv6 addresses carry a "%zone" suffix that ip_address() rejects; such
    # link-local addresses are refused anyway, so the bare address is enough.
    return [
        (fam, proto, str(addr[0]).split("%")[0], int(addr[1])) for fam, _, proto, _, addr in infos
    ]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")
