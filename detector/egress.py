"""An egress guard for test runs: no connection or DNS lookup beyond loopback.

With ``DETECTOR_EGRESS=loopback`` in the environment, importing :mod:`detector` installs it, so
every ``detector`` subprocess a test suite starts is covered as well as the test process
(tests/conftest.py installs it there).  A refused attempt raises :class:`EgressRefusedError`
(an ``OSError``, so it fails as a network error would) and is appended to the file named by
``DETECTOR_EGRESS_LOG``, where the suite finds it and fails the test that made it.

Stdlib only; patches :mod:`socket` (``connect``, ``connect_ex``, ``sendto``, ``getaddrinfo``,
``gethostbyname``, ``gethostbyname_ex``), which every client in this project goes through.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

ENV = "DETECTOR_EGRESS"
LOG_ENV = "DETECTOR_EGRESS_LOG"

#: Attempts refused in this process, newest last.
attempts: list[str] = []
_installed: dict[str, Any] = {}


class EgressRefusedError(OSError):
    """A connection or lookup beyond loopback, refused by the egress guard."""


def is_loopback_host(host: object) -> bool:
    """True for loopback addresses, ``localhost`` and the empty/wildcard host (no packet leaves).

    >>> [is_loopback_host(h) for h in ("127.0.0.1", "::1", "localhost", None, "10.0.0.1", "example.com")]
    [True, True, True, True, False, False]
    """
    if host is None or host == "" or host == b"":
        return True
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    text = text.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _numeric(host: object) -> bool:
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refuse(what: str) -> EgressRefusedError:
    message = f"detector egress guard: refused {what} (only loopback is allowed here, {ENV}=loopback)"
    attempts.append(message)
    path = os.environ.get(LOG_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"pid {os.getpid()}: {message}\n")
        except OSError:
            pass
    return EgressRefusedError(message)


def _address_ok(sock: socket.socket, address: Any) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or not address:
        return True  # AF_UNIX and friends stay on this machine
    return is_loopback_host(address[0])


def install() -> None:
    """Patch :mod:`socket` for this process (idempotent)."""
    if _installed:
        return
    _installed.update(
        connect=socket.socket.connect, connect_ex=socket.socket.connect_ex, sendto=socket.socket.sendto,
        getaddrinfo=socket.getaddrinfo, gethostbyname=socket.gethostbyname,
        gethostbyname_ex=socket.gethostbyname_ex,
    )
    connect, connect_ex, sendto = _installed["connect"], _installed["connect_ex"], _installed["sendto"]

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _address_ok(self, address):
            raise _refuse(f"a connection to {address!r}")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _address_ok(self, address):
            raise _refuse(f"a connection to {address!r}")
        result: int = connect_ex(self, address)
        return result

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        address = args[-1] if args else None
        if address is not None and not _address_ok(self, address):
            raise _refuse(f"a datagram to {address!r}")
        result: int = sendto(self, data, *args)
        return result

    def lookup(original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not (is_loopback_host(host) or _numeric(host)):
                raise _refuse(f"a DNS lookup of {host!r}")
            return original(host, *args, **kwargs)
        return guarded

    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = guarded_sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = lookup(_installed["getaddrinfo"])
    socket.gethostbyname = lookup(_installed["gethostbyname"])
    socket.gethostbyname_ex = lookup(_installed["gethostbyname_ex"])


def install_from_environment() -> bool:
    """Install the guard when ``DETECTOR_EGRESS=loopback``; True when it is on."""
    mode = os.environ.get(ENV, "").strip().lower()
    if mode in ("", "off", "0"):
        return False
    if mode != "loopback":
        raise SystemExit(f"{ENV}={mode!r}: the only mode is 'loopback' (or unset it)")
    install()
    return True
