"""URL safety, resolution only: nothing here sends a request."""

from __future__ import annotations

import asyncio
import re

import pytest

from api.urls import Resolver, UnresolvableHost, UnsafeUrl, check_url, resolve_target


def fake_resolver(table: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://localhost:8080/",
    ],
)
async def test_private_addresses_are_refused(url):
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "embedded"),
    [
        ("http://[2002:7f00:1::1]/", "127.0.0.1 wrapped in 6to4"),
        ("http://[2002:a00:1::]/", "10.0.0.1 wrapped in 6to4"),
        ("http://[2002:a9fe:a9fe::1]/", "169.254.169.254 wrapped in 6to4"),
        ("http://[64:ff9b::7f00:1]/", "127.0.0.1 wrapped in NAT64"),
        ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254 wrapped in NAT64"),
        ("http://[::ffff:0:7f00:1]/", "127.0.0.1 wrapped in IPv4-translated"),
        ("http://[::ffff:192.168.0.1]/", "192.168.0.1 wrapped in IPv4-mapped"),
        # Teredo: the server 65.54.227.120, the client 127.0.0.1 (stored inverted).
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "127.0.0.1 wrapped in Teredo"),
    ],
)
async def test_addresses_that_embed_a_private_one_are_refused(url, embedded):
    with pytest.raises(UnsafeUrl, match=re.escape(embedded)):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/",  # IPv4-compatible: deprecated, never routed
        "http://[::93.184.216.34]/",
        "http://[64:ff9b:1::5db8:d822]/",  # the local-use NAT64 prefix
        "http://[2001:0:4136:e378:8000:63bf:a247:27dd]/",  # Teredo around public addresses
    ],
)
async def test_deprecated_and_local_wrappers_are_refused_whatever_they_carry(url):
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)


async def test_a_name_resolving_to_6to4_around_loopback_is_refused():
    resolver = fake_resolver({"sneaky.example": ["2002:7f00:1::1"]})
    with pytest.raises(UnsafeUrl, match=re.escape("127.0.0.1 wrapped in 6to4")):
        await resolve_target("http://sneaky.example/", allow_private=False, resolver=resolver)


async def test_public_ipv6_and_6to4_around_a_public_address_are_allowed():
    for url in ("http://[2606:4700::1111]/h", "http://[2002:5db8:d822::1]/h"):
        assert await check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http:///nohost",
        "not a url",
    ],
)
async def test_bad_urls_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=True)


async def test_private_allowed_in_development():
    assert await check_url("http://127.0.0.1:9/x", allow_private=True) == "http://127.0.0.1:9/x"


async def test_a_public_name_is_pinned_to_the_checked_address():
    resolver = fake_resolver({"crm.example": ["93.184.216.34"]})
    target = await resolve_target(
        "https://crm.example:8443/hooks?x=1", allow_private=False, resolver=resolver
    )
    assert str(target.url) == "https://93.184.216.34:8443/hooks?x=1"
    assert target.headers == {"Host": "crm.example:8443"}
    assert target.extensions == {"sni_hostname": "crm.example"}


async def test_a_name_with_any_private_address_is_refused():
    resolver = fake_resolver({"rebind.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(UnsafeUrl, match="private"):
        await resolve_target("http://rebind.example/", allow_private=False, resolver=resolver)


async def test_an_unresolvable_name_is_refused():
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        await resolve_target("http://nx.example/", allow_private=False, resolver=fake_resolver({}))


async def test_a_public_literal_is_used_as_is():
    target = await resolve_target("http://93.184.216.34/h", allow_private=False)
    assert str(target.url) == "http://93.184.216.34/h"
    assert target.headers == {}


async def test_a_slow_resolver_times_out():
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.216.34"]

    with pytest.raises(UnresolvableHost, match="did not resolve in"):
        await resolve_target(
            "http://slow.example/", allow_private=False, resolver=slow, resolve_seconds=0.05
        )
