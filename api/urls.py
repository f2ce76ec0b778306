"""Webhook URL safety: subscribers must not make Lapse call into its own network (SSRF).

A URL is checked when a subscription is created or changed, and again before every
delivery, because DNS can change in between. The delivery then connects to the very address
that was checked (the URL's host is replaced by it; the ``Host`` header and TLS server name
keep the original name), so a second lookup cannot swap in a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class UnsafeUrl(ValueError):
    """The URL may not be used for a webhook; the message says why (safe to show the caller)."""


class UnresolvableHost(UnsafeUrl):
    """The host does not resolve (now): refused when subscribing, a network error when sending."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send: the URL to request, plus the headers and extensions that go with it."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def parse(url: str) -> httpx.URL:
    """Syntax checks: http(s), a host, no userinfo."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are allowed")
    if not parsed.host:
        raise UnsafeUrl("the URL has no host")
    if parsed.userinfo:
        raise UnsafeUrl("credentials in the URL are not allowed")
    return parsed


# IPv6 addresses that carry an IPv4 address a router or a host on the way unwraps: the
# embedded address decides where the request goes, so it is checked as if it were the target
# (``http://[2002:7f00:1::1]/`` is 127.0.0.1 to any host with a 6to4 interface or relay).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the operator's own NAT64
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT's IPv4-translated (RFC 2765)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible, deprecated (RFC 4291 §2.5.5.1)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The kind of wrapper and the IPv4 address(es) an IPv6 address carries, or None."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return "6to4", [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return "Teredo", [server, client]
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return "NAT64", [low]
    if ip in _TRANSLATED:
        return "IPv4-translated", [low]
    if ip in _COMPATIBLE and int(ip) > 1:  # not :: or ::1, which are themselves
        return "IPv4-compatible", [low]
    return None


def unsafe_reason(ip: IPAddress) -> str | None:
    """Why an address is not a public unicast one, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        wrapped = embedded_ipv4(ip)
        if wrapped is not None:
            kind, inner = wrapped
            if kind == "IPv4-compatible" or ip in _NAT64_LOCAL:
                return f"{kind} (deprecated or local-use) IPv6"
            for v4 in inner:
                reason = unsafe_reason(v4)
                if reason is not None:
                    return f"{reason} (IPv4 {v4} wrapped in {kind} IPv6)"
            if kind == "IPv4-mapped":
                return None  # the IPv4 address itself, public
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


async def _getaddrinfo(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip(text: str) -> IPAddress:
    # Scoped IPv6 addresses come back as "fe80::1%eth0".
    return ipaddress.ip_address(text.split("%", 1)[0])


async def resolve_target(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    resolve_seconds: float = 5.0,
) -> Target:
    """Check ``url`` and return where to connect; raise :class:`UnsafeUrl` if it may not be used.

    With ``allow_private`` (development and tests) only the syntax is checked.
    """
    parsed = parse(url)
    if allow_private:
        return Target(parsed)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses: Sequence[str] = [str(_ip(host))]
        literal = True
    except ValueError:
        literal = False
        try:
            async with asyncio.timeout(resolve_seconds):
                addresses = await (resolver or _getaddrinfo)(host, port)
        except TimeoutError as exc:
            raise UnresolvableHost(
                f"the host {host!r} did not resolve in {resolve_seconds:g}s"
            ) from exc
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(f"the host {host!r} does not resolve") from exc
    if not addresses:
        raise UnresolvableHost(f"the host {host!r} does not resolve")
    ips = [_ip(a) for a in addresses]
    for ip in ips:
        reason = unsafe_reason(ip)
        if reason is not None:
            raise UnsafeUrl(f"the host {host!r} resolves to a {reason} address ({ip})")
    if literal:
        return Target(parsed)
    # Pin the checked address: connect to it, keep the name for Host and TLS (SNI + cert check).
    pinned = parsed.copy_with(host=str(ips[0]))
    return Target(
        pinned,
        headers={"Host": parsed.netloc.decode("ascii")},
        extensions={"sni_hostname": host} if parsed.scheme == "https" else {},
    )


async def check_url(
    url: str, *, allow_private: bool, resolver: Resolver | None = None, resolve_seconds: float = 5.0
) -> str:
    """Validate a subscription URL; return it normalised (as httpx spells it)."""
    await resolve_target(
        url, allow_private=allow_private, resolver=resolver, resolve_seconds=resolve_seconds
    )
    return str(parse(url))
