"""Strict IP and CIDR parsing, and the trusted-proxy rule: properties over the whole input space."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vault.netaddr import AddressError, in_any, parse_ip, parse_network, parse_networks, resolve_client_ip

v4 = st.ip_addresses(v=4)
v6 = st.ip_addresses(v=6)


@given(v4)
def test_every_ipv4_round_trips(addr: ipaddress.IPv4Address) -> None:
    assert parse_ip(str(addr)) == addr


@given(v6)
def test_every_ipv6_round_trips_or_maps_to_ipv4(addr: ipaddress.IPv6Address) -> None:
    for text in (str(addr), addr.exploded, str(addr).upper()):
        parsed = parse_ip(text)
        assert parsed == (addr.ipv4_mapped or addr)


@given(v4)
def test_mapped_ipv6_is_matched_as_ipv4(addr: ipaddress.IPv4Address) -> None:
    assert parse_ip(f"::ffff:{addr}") == addr
    net = parse_network(f"{addr}/32")
    assert in_any(parse_ip(f"::ffff:{addr}"), [net])


@given(v4, st.integers(0, 3), st.sampled_from(["0", "00"]))
def test_leading_zero_octets_are_refused(addr: ipaddress.IPv4Address, index: int, zeros: str) -> None:
    octets = str(addr).split(".")
    octets[index] = zeros + octets[index]
    with pytest.raises(AddressError):
        parse_ip(".".join(octets))


@given(st.one_of(v4, v6), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8))
def test_zone_ids_are_refused(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, zone: str) -> None:
    with pytest.raises(AddressError):
        parse_ip(f"{addr}%{zone}")


@given(st.text(max_size=50))
def test_arbitrary_text_parses_to_a_canonical_address_or_is_refused(text: str) -> None:
    try:
        addr = parse_ip(text)
    except AddressError:
        return
    # Whatever is accepted is a plain address that ipaddress agrees on, spelled without decoration.
    assert text == text.strip() and "%" not in text and "/" not in text and "[" not in text
    assert addr == (ipaddress.ip_address(text).ipv4_mapped or ipaddress.ip_address(text))  # type: ignore[union-attr]


@given(st.one_of(v4, v6), st.sampled_from([" ", "\t", "\n"]))
def test_whitespace_is_refused(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, ws: str) -> None:
    for text in (f"{ws}{addr}", f"{addr}{ws}"):
        with pytest.raises(AddressError):
            parse_ip(text)


@given(st.one_of(v4, v6), st.integers(0, 128))
def test_cidrs_are_strict(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int) -> None:
    assume(not (addr.version == 6 and addr.ipv4_mapped))  # type: ignore[union-attr]
    max_prefix = 32 if addr.version == 4 else 128
    assume(prefix <= max_prefix)
    text = f"{addr}/{prefix}"
    net = ipaddress.ip_network(text, strict=False)
    floor = 16 if addr.version == 4 else 48
    if net.network_address != addr:
        with pytest.raises(AddressError, match="host bits"):
            parse_network(text, allow_broad=True)
    elif prefix < floor:
        with pytest.raises(AddressError, match="too broad"):
            parse_network(text)
        assert parse_network(text, allow_broad=True) == net
    else:
        assert parse_network(text) == net


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.0/255.255.0.0",
        "10.0.0.0/0.0.255.255",
        "10.0.0.0/024",
        "10.0.0.0/",
        "10.0.0.0/+24",
        "10.0.0.0/24 ",
        "10.0.0.0 /24",
        "fe80::%1/64",
        "10.0.0.0/33",
        "::/129",
        "10.0.0/24",
        "0x0a.0.0.0/8",
        "1e1.0.0.0/8",
    ],
)
def test_cidr_spellings_that_are_refused(text: str) -> None:
    with pytest.raises(AddressError):
        parse_network(text, allow_broad=True)


def test_zero_prefix_needs_the_risk_setting() -> None:
    for text in ("0.0.0.0/0", "::/0"):
        with pytest.raises(AddressError, match="too broad"):
            parse_network(text)
        assert parse_network(text, allow_broad=True).prefixlen == 0


def test_mapped_ranges_become_ipv4_ranges() -> None:
    assert parse_network("::ffff:203.0.113.0/120") == ipaddress.ip_network("203.0.113.0/24")
    with pytest.raises(AddressError):
        parse_network("::ffff:203.0.113.0/80", allow_broad=True)


def test_lists() -> None:
    assert parse_networks("") == ()
    assert parse_networks("203.0.113.0/24, 2001:db8::/48") == (
        ipaddress.ip_network("203.0.113.0/24"),
        ipaddress.ip_network("2001:db8::/48"),
    )
    with pytest.raises(AddressError):
        parse_networks("203.0.113.0/24,,")


PROXIES = parse_networks("10.0.0.1/32,10.0.0.2/32")


@given(v4, st.lists(st.one_of(v4, v6).map(str), max_size=4))
def test_an_untrusted_peer_is_the_client_whatever_it_sends(peer: ipaddress.IPv4Address, forged: list[str]) -> None:
    assume(not in_any(peer, PROXIES))
    assert resolve_client_ip(str(peer), ", ".join(forged) or None, PROXIES).client == peer


@given(st.lists(st.one_of(v4, v6).map(str), max_size=4), v4)
def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(
    forged: list[str], real: ipaddress.IPv4Address
) -> None:
    assume(not in_any(real, PROXIES))
    xff = ", ".join([*forged, str(real), "10.0.0.1"])  # client's claims, what the edge saw, the inner proxy
    chain = resolve_client_ip("10.0.0.2", xff, PROXIES)
    assert chain.client == real and chain.proxy_hops == 2


def test_a_malformed_hop_that_must_be_read_refuses() -> None:
    with pytest.raises(AddressError):
        resolve_client_ip("10.0.0.1", "203.0.113.5, 198.51.100.1%eth0", PROXIES)
    # ...but one left of the client's hop is never read.
    assert str(resolve_client_ip("10.0.0.1", "garbage, 198.51.100.1", PROXIES).client) == "198.51.100.1"


def test_the_walk_passes_at_most_max_proxies_trusted_proxies() -> None:
    xff = "203.0.113.5, 10.0.0.1, 10.0.0.2, 10.0.0.1"  # four trusted proxies with the peer
    with pytest.raises(AddressError, match="more than 3 trusted proxies"):
        resolve_client_ip("10.0.0.2", xff, PROXIES, max_proxies=3)
    assert str(resolve_client_ip("10.0.0.2", xff, PROXIES, max_proxies=4).client) == "203.0.113.5"
    # Only the trusted hops count: forged entries left of the client are never read.
    assert str(resolve_client_ip("10.0.0.2", "a, b, c, d, 203.0.113.5", PROXIES, max_proxies=1).client) == "203.0.113.5"


def test_a_request_from_the_proxy_itself() -> None:
    assert str(resolve_client_ip("10.0.0.1", None, PROXIES).client) == "10.0.0.1"
    assert str(resolve_client_ip("10.0.0.1", "10.0.0.2", PROXIES).client) == "10.0.0.2"
