"""The address guard: which addresses are public, the allowlist, URL vetting, the resolver."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from yarl import URL

from bot.ssrf import (
    ALLOWLIST_ENV,
    Allowlist,
    GuardedResolver,
    GuardRefusal,
    allowlist_from_env,
    check_url_syntax,
    is_public_address,
    parse_allowlist,
    vet_url,
)

NON_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.10",
    "169.254.169.254",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", NON_PUBLIC)
def test_non_public_addresses(text: str) -> None:
    assert not is_public_address(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses(text: str) -> None:
    assert is_public_address(ipaddress.ip_address(text))


def test_parse_allowlist_mixes_hosts_addresses_and_networks() -> None:
    allow = parse_allowlist(" 127.0.0.1, 10.20.0.0/16 ,Feeds.Intranet.Example., [::1]")

    assert allow.allows_host("feeds.intranet.example")
    assert allow.allows_host("FEEDS.intranet.example.")
    assert not allow.allows_host("other.intranet.example")
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert allow.allows_address(ipaddress.ip_address("10.20.30.40"))
    assert allow.allows_address(ipaddress.ip_address("::ffff:10.20.0.1"))
    assert allow.allows_address(ipaddress.ip_address("::1"))
    assert not allow.allows_address(ipaddress.ip_address("10.21.0.1"))


def test_empty_allowlist_allows_nothing() -> None:
    for spec in ("", " , ,"):
        allow = parse_allowlist(spec)
        assert allow == Allowlist.empty()
        assert not allow.allows_address(ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "http://x", "a b/c", "exa mple@host"])
def test_parse_allowlist_rejects_garbage_with_the_entry_named(bad: str) -> None:
    with pytest.raises(ValueError, match=ALLOWLIST_ENV):
        parse_allowlist(bad)


def test_allowlist_from_env() -> None:
    allow = allowlist_from_env({ALLOWLIST_ENV: "127.0.0.1"})
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert allowlist_from_env({}) == Allowlist.empty()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("file:///etc/passwd", "bad_url"),
        ("ftp://example.com/feed", "bad_url"),
        ("javascript:alert(1)", "bad_url"),
        ("http://10.0.0.1/", "ssrf"),
        ("http://[::ffff:192.168.0.1]/", "ssrf"),
        ("http://localhost/", "ssrf"),
        ("http://2130706433/", "ssrf"),  # 127.0.0.1 written as one number
    ],
)
async def test_vet_url_refuses(url: str, kind: str) -> None:
    with pytest.raises(GuardRefusal) as refused:
        await vet_url(URL(url), Allowlist.empty())
    assert refused.value.kind == kind


async def test_vet_url_accepts_allowlisted_loopback_and_names() -> None:
    await vet_url(URL("http://127.0.0.1:8080/feed"), parse_allowlist("127.0.0.0/8"))
    await vet_url(URL("https://localhost/feed"), parse_allowlist("localhost"))
    await vet_url(URL("http://93.184.215.14/feed"), Allowlist.empty())


async def test_unresolvable_host_is_an_os_error_not_a_refusal() -> None:
    with pytest.raises(OSError, match="could not resolve"):
        await vet_url(URL("http://no-such-host.invalid/"), Allowlist.empty())


async def test_resolver_returns_only_vetted_addresses() -> None:
    resolver = GuardedResolver(parse_allowlist("127.0.0.1"))
    results = await resolver.resolve("localhost", 8080, socket.AF_INET)

    assert [(r["host"], r["port"]) for r in results] == [("127.0.0.1", 8080)]
    assert results[0]["hostname"] == "localhost"


async def test_resolver_refuses_private_resolution() -> None:
    resolver = GuardedResolver(Allowlist.empty())
    with pytest.raises(GuardRefusal) as refused:
        await resolver.resolve("localhost", 80, socket.AF_INET)
    assert refused.value.kind == "ssrf"
    await resolver.close()


async def test_resolver_trusts_an_allowlisted_name() -> None:
    resolver = GuardedResolver(parse_allowlist("localhost"))
    results = await resolver.resolve("localhost", 80, socket.AF_INET)
    assert {r["host"] for r in results} == {"127.0.0.1"}


def test_check_url_syntax_explains_what_is_wrong() -> None:
    assert check_url_syntax(" https://example.com/feed.xml ") is None
    assert check_url_syntax("http://10.0.0.1/") is None  # addresses are checked at fetch time
    assert "not ftp" in (check_url_syntax("ftp://example.com/") or "")
    assert "no host" in (check_url_syntax("http:///feed") or "")
    assert check_url_syntax("http://[::1/") == "the URL is not valid"
