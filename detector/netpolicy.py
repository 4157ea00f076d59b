"""Which names may reach a resolver and which addresses a crawler may connect to.

One definition, shared by static fetching, the DNS tier and the rendered tier:

- :func:`is_reserved_name`: names under the special-use suffixes (``.test``, ``.example``,
  ``.invalid``, ``.localhost``, ``.local``; RFC 2606, RFC 6761, RFC 6762) never go to a resolver
  the user did not name: they cannot exist on the public DNS, so a lookup only leaks them.
- :func:`blocked_address_reason`: why an address must not be fetched from an untrusted account
  list (loopback, private, CGNAT, link-local, metadata, multicast, unspecified, reserved), or None.
- :func:`refusal`: that reason as a message for a host (an address literal, or a name and what
  it resolved to); :func:`is_localhost`: ``localhost`` names.

Stdlib only, so every layer can import it.
"""

from __future__ import annotations

import ipaddress

#: Special-use suffixes whose names are never sent to a resolver that was not named explicitly.
RESERVED_NAME_SUFFIXES = ("test", "example", "invalid", "localhost", "local")

#: Cloud metadata services, refused even where their range is otherwise allowed.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def is_reserved_name(host: str) -> bool:
    """True for names under a special-use suffix (and the bare suffixes themselves).

    >>> [is_reserved_name(h) for h in ("shop.test", "TEST.", "a.localhost", "printer.local", "example.com")]
    [True, True, True, True, False]
    """
    name = host.strip().rstrip(".").lower()
    if not name:
        return False
    return name.rsplit(".", 1)[-1] in RESERVED_NAME_SUFFIXES


def blocked_address_reason(address: str) -> str | None:
    """Why a crawler must not connect to ``address`` (an IP literal), or None when it may.

    IPv4-mapped and 6to4-free IPv6 forms are judged by the IPv4 address they carry.

    >>> blocked_address_reason("169.254.169.254")
    'metadata service'
    >>> blocked_address_reason("::ffff:10.0.0.1")
    'private network'
    >>> [blocked_address_reason(a) for a in ("127.0.0.1", "100.64.1.2", "224.0.0.1", "0.0.0.0")]
    ['loopback', 'shared address space (CGNAT)', 'multicast', 'unspecified']
    >>> blocked_address_reason("93.184.216.34") is None
    True
    """
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "metadata service"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared address space (CGNAT)"
    if ip.is_private:
        return "private network"
    if ip.is_reserved:
        return "reserved"
    return None


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 literal (brackets allowed).

    >>> [is_ip_literal(h) for h in ("10.0.0.1", "[::1]", "shop.test")]
    [True, True, False]
    """
    try:
        ipaddress.ip_address(host.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def refusal(host: str, address: str | None = None, *, allow_private: bool = False) -> str | None:
    """Why a connection to ``host`` (resolved to ``address``) is refused, as a message, or None.

    >>> refusal("evil.example.com", "169.254.169.254")
    'evil.example.com resolves to 169.254.169.254 (metadata service)'
    >>> refusal("10.0.0.1"), refusal("10.0.0.1", allow_private=True)
    ('10.0.0.1 is a private network address', None)
    >>> refusal("www.example.com", "93.184.216.34") is None
    True
    """
    if allow_private:
        return None
    target = host if is_ip_literal(host) else address
    if target is None:
        return None
    reason = blocked_address_reason(target)
    if reason is None:
        return None
    if target == host:
        return f"{host} is a {reason} address"
    return f"{host} resolves to {address} ({reason})"


def is_localhost(host: str) -> bool:
    """True for ``localhost`` and names under it (this machine, whatever resolves them).

    >>> is_localhost("LocalHost."), is_localhost("app.localhost"), is_localhost("localhost.example")
    (True, True, False)
    """
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")
