"""Strict parsing of client IP addresses and CIDR ranges for the label API's allowlists.

Python's :mod:`ipaddress` is lenient in ways an allowlist must not be: it accepts IPv6 zone ids
(``fe80::1%eth0``), netmask and hostmask prefixes (``10.0.0.0/255.0.0.0``), surrounding whitespace in some
places, and treats an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) as a different address from
``192.0.2.1``. Everything here refuses what is ambiguous instead of guessing: one spelling in, one address
out, or :class:`AddressError`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Ranges broader than these are refused unless the operator accepts the risk by setting: a /15 is
#: 131,072 IPv4 addresses, far more than any warehouse or printing service needs.
MIN_PREFIX_V4 = 16
MIN_PREFIX_V6 = 48

#: The broadest trusted-proxy range, whatever the settings say: the X-Forwarded-For of a trusted proxy is
#: believed, so a range broader than any one operator's own network would let strangers name their own
#: address. 10.0.0.0/8 is the broadest private IPv4 block (RFC 1918) and a /32 the usual IPv6 allocation
#: to a whole provider (an LIR); a load balancer or cluster subnet is far narrower than either.
PROXY_MIN_PREFIX_V4 = 8
PROXY_MIN_PREFIX_V6 = 32

_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
# Hex digits, colons, and an optional dotted IPv4 tail; no zone id, no brackets, no port, no whitespace.
_IPV6 = re.compile(r"[0-9A-Fa-f:]{2,39}(?:(?<=:)(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3})?")
_PREFIX = re.compile(r"0|[1-9][0-9]{0,2}")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class AddressError(ValueError):
    """An IP address or CIDR range is malformed, ambiguous or too broad. The message names no PII."""


def parse_ip(text: str) -> IPAddress:
    """One IP address in its plain textual form; an IPv4-mapped IPv6 address comes back as IPv4.

    Refused: leading-zero octets (``010.0.0.1`` means octal to some parsers), zone ids, brackets, ports,
    whitespace, empty strings and anything else :mod:`ipaddress` would not parse.
    """
    if _IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            raise AddressError("not a valid IPv4 address") from None
    if ":" in text and _IPV6.fullmatch(text):
        try:
            addr = ipaddress.IPv6Address(text)
        except ValueError:
            raise AddressError("not a valid IPv6 address") from None
        mapped = addr.ipv4_mapped
        return mapped if mapped is not None else addr
    raise AddressError("not a plain IPv4 or IPv6 address")


def parse_network(text: str, *, allow_broad: bool = False) -> IPNetwork:
    """A CIDR range such as ``203.0.113.0/24`` (a bare address means just that address).

    Refused: host bits set (``10.0.0.1/8``), netmask forms, leading zeros, zone ids, whitespace, and ranges
    broader than /16 (IPv4) or /48 (IPv6) unless ``allow_broad``. A range inside ``::ffff:0:0/96`` is
    turned into the IPv4 range it maps, so it matches clients the way :func:`parse_ip` reports them.
    """
    addr_text, slash, prefix_text = text.partition("/")
    addr = parse_ip(addr_text)  # normalises a mapped address to IPv4; the prefix is adjusted below
    mapped = isinstance(addr, ipaddress.IPv4Address) and ":" in addr_text
    if slash:
        if not _PREFIX.fullmatch(prefix_text):
            raise AddressError("the prefix length must be a plain decimal number")
        prefix = int(prefix_text)
    else:
        prefix = 128 if ":" in addr_text else 32
    if mapped:
        if prefix < 96 or prefix > 128:
            raise AddressError("an IPv4-mapped range needs a prefix between /96 and /128")
        prefix -= 96
    try:
        network: IPNetwork = ipaddress.ip_network(f"{addr}/{prefix}", strict=True)
    except ValueError:
        raise AddressError("not a valid CIDR range (are host bits set?)") from None
    if not allow_broad:
        floor = MIN_PREFIX_V4 if network.version == 4 else MIN_PREFIX_V6
        if network.prefixlen < floor:
            raise AddressError(
                f"/{network.prefixlen} is too broad (narrowest accepted without the risk setting: /{floor})"
            )
    return network


def parse_networks(text: str, *, allow_broad: bool = False) -> tuple[IPNetwork, ...]:
    """A comma-separated list of CIDR ranges (the format of the allowlist settings); empty gives ``()``."""
    if not text.strip():
        return ()
    return tuple(parse_network(part.strip(), allow_broad=allow_broad) for part in text.split(","))


def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """The trusted-proxy list: :func:`parse_networks` with its own floor (/8, /32) that no setting lifts."""
    networks = parse_networks(text, allow_broad=True)
    for network in networks:
        floor = PROXY_MIN_PREFIX_V4 if network.version == 4 else PROXY_MIN_PREFIX_V6
        if network.prefixlen < floor:
            raise AddressError(f"/{network.prefixlen} is too broad for trusted proxies (at most /{floor}, always)")
    return networks


def in_any(addr: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    """Whether ``addr`` lies in one of ``networks`` (IPv4 never matches an IPv6 range, and vice versa)."""
    return any(addr.version == net.version and addr in net for net in networks)


@dataclass(frozen=True, slots=True)
class ForwardedChain:
    """How the client address was found: the address, and how many trusted proxy hops were skipped."""

    client: IPAddress
    proxy_hops: int


def resolve_client_ip(
    peer: str, forwarded_for: str | None, trusted_proxies: Iterable[IPNetwork], *, max_proxies: int = 2
) -> ForwardedChain:
    """The client's address from the socket peer and ``X-Forwarded-For``, believing only trusted proxies.

    The socket peer is the client unless it is a trusted proxy. Only then is ``X-Forwarded-For`` read, from
    the right (each proxy appends the address it saw), skipping addresses that are themselves trusted
    proxies; the first untrusted address is the client. Anything left of it was written by the client and is
    never believed. At most ``max_proxies`` trusted proxies (the peer included) are passed: a chain of more
    is not the deployment's, and is refused rather than walked. A malformed entry that has to be read, or a
    chain too long, raises :class:`AddressError` (refuse the request).
    """
    proxies = tuple(trusted_proxies)
    addr = parse_ip(peer)
    hops = 0
    if not in_any(addr, proxies) or forwarded_for is None:
        return ForwardedChain(addr, hops)
    passed = 1  # the peer
    for entry in reversed(forwarded_for.split(",")):
        addr = parse_ip(entry.strip(" \t"))
        hops += 1
        if not in_any(addr, proxies):
            return ForwardedChain(addr, hops)
        passed += 1
        if passed > max_proxies:
            raise AddressError(f"X-Forwarded-For names more than {max_proxies} trusted proxies")
    # Every hop was a trusted proxy: the request started at the leftmost one (e.g. a health check).
    return ForwardedChain(addr, hops)
