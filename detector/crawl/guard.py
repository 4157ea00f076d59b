"""The SSRF guard of the static crawl: no connection to a private, loopback or metadata address.

An account list is untrusted input: a site may redirect to ``http://169.254.169.254/``, or its
name may resolve (or re-resolve, DNS rebinding) to ``10.0.0.1``.  Two parts, judged by
:func:`detector.netpolicy.blocked_address_reason`:

- :class:`GuardedResolver` is the reactor's resolver.  Every connection Scrapy makes asks it for
  the address to connect to, so the address it checks is the one connected to (no second
  lookup can differ).  It also answers reserved names (``.test``...) at once, without a lookup,
  unless ``DETECTOR_RESOLVE`` names them.
- :class:`GuardMiddleware` refuses, before anything is sent, IP-literal targets, ``localhost``
  names and schemes other than http(s) (a redirect to ``file:`` must not read a local file),
  and with a proxy it is the only check there is: the proxy resolves the names.  It turns the
  resolver's refusals into :class:`BlockedAddressError` (error kind ``blocked_address``).

``DETECTOR_ALLOW_PRIVATE`` (``--allow-private``) turns the address checks off; the proxy's own
address is always allowed (the user named it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.datatypes import LocalCache
from twisted.internet import defer
from twisted.internet.error import DNSLookupError

from detector.netpolicy import is_ip_literal, is_localhost, is_reserved_name, refusal

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from twisted.internet.base import ReactorBase
    from twisted.internet.defer import Deferred
    from typing_extensions import Self

#: Why names were refused by the resolver, for the middleware's error message (bounded).
_refusals: LocalCache[str, str] = LocalCache(10_000)


class BlockedAddressError(IgnoreRequest):
    """A request the guard refused: its address is private, loopback, metadata..."""


class UnsupportedSchemeError(IgnoreRequest):
    """A redirect to ``file:``, ``data:``, ``ftp:``...: never fetched (error kind ``bad_redirect``)."""


class ReservedNameError(IgnoreRequest):
    """A reserved name (``.test``...) that would have gone to a resolver nobody named."""


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing blocked answers and unnamed reserved names.

    A refused name fails as a DNS lookup (what Twisted's connection code understands) and its
    reason is kept for :class:`GuardMiddleware`, which reports it as ``blocked_address``.
    """

    def __init__(
        self,
        reactor: ReactorBase,
        cache_size: int,
        timeout: float,
        *,
        allow_private: bool = False,
        static: Mapping[str, str] | None = None,
        trusted: Sequence[str] = (),
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.allow_private = allow_private
        self.static = {k.lower().rstrip("."): v for k, v in (static or {}).items()}
        self.trusted = frozenset(h.lower() for h in trusted if h)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> Self:
        """Read DETECTOR_ALLOW_PRIVATE, DETECTOR_RESOLVE and DETECTOR_PROXY (always allowed)."""
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        proxy_host = urlsplit(str(settings.get("DETECTOR_PROXY") or "")).hostname or ""
        return cls(
            reactor,
            cache_size,
            settings.getfloat("DNS_TIMEOUT"),
            allow_private=settings.getbool("DETECTOR_ALLOW_PRIVATE"),
            static=settings.getdict("DETECTOR_RESOLVE"),
            trusted=[proxy_host],
        )

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        """The address to connect to for ``name``, unless the guard refuses it."""
        host = name.lower().rstrip(".")
        if host in self.trusted:
            return super().getHostByName(name, timeout)
        if host in self.static:
            return self._checked(self.static[host], host)
        if is_ip_literal(host):
            return self._checked(host, host)
        if is_reserved_name(host):
            why = f"{host} is a reserved name: it never resolves on the public DNS, so it was not looked up"
            _refusals[host] = "reserved:" + why
            return defer.fail(DNSLookupError(why))
        d = super().getHostByName(name, timeout)
        d.addCallback(self._checked, host)
        return d

    def _checked(self, address: str, host: str) -> Deferred[str]:
        why = refusal(host, address, allow_private=self.allow_private)
        if why is None:
            return defer.succeed(address)
        _refusals[host] = "blocked:" + why
        return defer.fail(DNSLookupError(why))


class GuardMiddleware:
    """Refuse blocked targets before they are asked for; name the address in the error."""

    def __init__(self, *, allow_private: bool = False, static: Mapping[str, str] | None = None) -> None:
        self.allow_private = allow_private
        self.static = {k.lower().rstrip(".") for k in (static or {})}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Read DETECTOR_ALLOW_PRIVATE and DETECTOR_RESOLVE."""
        settings = crawler.settings
        return cls(allow_private=settings.getbool("DETECTOR_ALLOW_PRIVATE"),
                   static=settings.getdict("DETECTOR_RESOLVE"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Raise for a request that must not be sent (checked on every redirect hop too)."""
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise UnsupportedSchemeError(f"{request.url[:200]}: only http and https are fetched")
        host = (parts.hostname or "").lower()
        if self.allow_private:
            return
        why = refusal(host)
        if why is None and is_localhost(host) and host not in self.static:
            why = f"{host} names this machine (loopback)"
        if why is not None:
            raise BlockedAddressError(f"{why}; refused (use --allow-private to crawl it)")
        if not request.meta.get("proxy") and is_reserved_name(host) and host not in self.static:
            raise ReservedNameError(
                f"{host} is a reserved name: it never resolves on the public DNS, so it was not looked up "
                "(give --proxy to crawl local test sites)"
            )

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        """A lookup the resolver refused becomes BlockedAddressError (or ReservedNameError)."""
        if type(exception).__name__ not in ("CannotResolveHostError", "DNSLookupError"):
            return
        host = (urlsplit(request.url).hostname or "").lower()
        why = _refusals.get(host)
        if why is None:
            return
        kind, _, message = why.partition(":")
        if kind == "reserved":
            raise ReservedNameError(message)
        raise BlockedAddressError(f"{message}; refused (use --allow-private to crawl it)")

