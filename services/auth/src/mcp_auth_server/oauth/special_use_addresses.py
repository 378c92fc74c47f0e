"""Which IP addresses an outbound fetch may reach: public unicast only (RFC 6890 special-use refused).

Python's `is_global` is the base rule, hardened for addresses that embed an IPv4 address
(IPv4-mapped, 6to4, Teredo, NAT64): `64:ff9b::7f00:1` is "global" to Python but reaches
127.0.0.1 through a NAT64 gateway. The embedded address must be public as well.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return True


def is_allowed(address: IPAddress, *, allow_loopback: bool) -> bool:
    """Public addresses; loopback too when the auth service itself runs on loopback."""
    if allow_loopback:
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if (plain or address).is_loopback:
            return True
    return is_public(address)
