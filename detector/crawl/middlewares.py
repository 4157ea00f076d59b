"""Downloader middlewares: one proxy for every request, cookies without a network suffix list,
no response left with a charset that cannot decode it.

Also :func:`classify_failure`, which turns whatever Scrapy or Twisted raised into one of the
error kinds stored in ``scans.error_kind``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import tldextract
from scrapy import Request
from scrapy.downloadermiddlewares import cookies as scrapy_cookies
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from detector.engine.page import body_encoding, text_encoding
from detector.inputs import RESERVED_SUFFIXES

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.robotstxt import RobotParser
    from typing_extensions import Self


class ProxyMiddleware:
    """Send every request (robots.txt included) through ``DETECTOR_PROXY``, HTTPS by CONNECT."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Read DETECTOR_PROXY; off when empty."""
        proxy = crawler.settings.get("DETECTOR_PROXY") or ""
        if not proxy:
            raise NotConfigured
        return cls(str(proxy))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Set ``meta['proxy']`` unless the request already names one."""
        request.meta.setdefault("proxy", self.proxy)


class SafeEncodingMiddleware:
    """Give every text response an encoding that decodes it, before anything reads its text.

    A page may declare any charset (``hex``, ``base64``, ``zlib``, ``undefined``, a typo).
    Scrapy trusts any name Python's codecs know, so the first ``response.text`` (the
    meta-refresh middleware's, the spider's link extraction) raises and a 200 OK page is
    lost.  Here the declaration is judged as the engine judges it
    (:func:`detector.engine.page.body_encoding`) and a bogus one replaced.
    """

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        """Return the response, re-labelled when its declared charset is not a text encoding."""
        if not isinstance(response, TextResponse):
            return response
        try:
            declared = response.encoding
        except (LookupError, UnicodeError, ValueError):
            declared = None
        if text_encoding(declared) is not None:
            return response
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        return response.replace(encoding=body_encoding(response.body, content_type))


class BundledSuffixCookiesMiddleware(CookiesMiddleware):
    """Scrapy's cookie middleware, with tldextract's bundled suffix list (no download).

    Scrapy's module builds ``TLDExtract()`` with default arguments, which fetches the public
    suffix list from the internet on first use; we swap in an offline extractor.
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Install the offline extractor, then build the middleware as Scrapy does."""
        scrapy_cookies._split_domain = tldextract.TLDExtract(
            suffix_list_urls=(),
            cache_dir=None,
            include_psl_private_domains=True,
            extra_suffixes=RESERVED_SUFFIXES,
        )
        return super().from_crawler(crawler)


class PerOriginRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with one robots.txt per origin (scheme, host and port).

    Scrapy keys its parsers by host and port alone, so the answer for ``https://site/robots.txt``
    (often "none": nothing listens on 443) was reused for ``http://site/``, whose own robots.txt
    may forbid everything.  Parsers are also dropped oldest first past ``DETECTOR_ROBOTS_CACHE``
    origins, so a million-domain crawl does not keep a million of them.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.cache_size = max(16, crawler.settings.getint("DETECTOR_ROBOTS_CACHE", 4096))

    async def robot_parser(self, request: Request) -> RobotParser | None:
        """The parser of the request's origin, fetching its robots.txt on first use."""
        url = urlparse_cached(request)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in self._parsers:
            self._evict()
            self._parsers[origin] = Deferred()
            robots_request = Request(
                origin + "/robots.txt",
                priority=self.DOWNLOAD_PRIORITY,
                meta={"dont_obey_robotstxt": True},
                callback=NO_CALLBACK,
            )
            try:
                engine: Any = self.crawler.engine
                response = await engine.download_async(robots_request)
                await self._parse_robots(response, origin, request)
            except Exception as exc:  # noqa: BLE001 - no robots.txt answer means no rules, as in Scrapy
                self._robots_error(exc, origin)
            self._stats.inc_value("robotstxt/request_count")
        parser = self._parsers[origin]
        if isinstance(parser, Deferred):
            result: RobotParser | None = await maybe_deferred_to_future(parser)
            return result
        return parser

    def _evict(self) -> None:
        """Forget the oldest answered origins once the cache is full (a later request refetches)."""
        if len(self._parsers) < self.cache_size:
            return
        for origin in list(self._parsers)[: len(self._parsers) - self.cache_size // 2]:
            if not isinstance(self._parsers[origin], Deferred):
                del self._parsers[origin]


# ---------------------------------------------------------------------------- failures

_TUNNEL = re.compile(r"'status': (\d+), 'reason': b?'([^']*)'")


def _chain(exc: BaseException | None) -> list[BaseException]:
    """The exception, its causes and the reasons Twisted wrapped inside it."""
    out: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(out) < 20:
        e = todo.pop(0)
        if e is None or e in out:
            continue
        if hasattr(e, "value") and hasattr(e, "trap"):  # a twisted Failure
            e = e.value
        out.append(e)
        todo.extend([e.__cause__, e.__context__])
        todo.extend(getattr(e, "reasons", None) or [])
    return out


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(error kind, message) for an exception raised while fetching a page.

    >>> classify_failure(TimeoutError("took too long"))
    ('timeout', 'TimeoutError: took too long')
    >>> classify_failure(ConnectionResetError("reset by peer"))[0]
    'connection_lost'
    """
    chain = _chain(exc)
    names = [type(e).__name__ for e in chain]
    text = " | ".join(f"{type(e).__name__}: {e}".strip() for e in chain)
    message = text[:500]
    if "BlockedAddressError" in names:
        return "blocked_address", str(chain[names.index("BlockedAddressError")])[:500]
    if "UnsupportedSchemeError" in names:
        return "bad_redirect", str(chain[names.index("UnsupportedSchemeError")])[:500]
    if "ReservedNameError" in names:
        return "dns", str(chain[names.index("ReservedNameError")])[:500]
    if any(n in ("CannotResolveHostError", "DNSLookupError") for n in names):
        return "dns", message
    if any(_is_tls(e) for e in chain) or "SSL routines" in text or "tlsv1 alert" in text:
        return "tls", message
    if any(n in ("DownloadConnectionRefusedError", "ConnectionRefusedError") for n in names):
        return "refused", message
    if any(n in ("DownloadTimeoutError", "TimeoutError", "TCPTimedOutError") for n in names):
        return "timeout", message
    if "TunnelError" in names:
        return _classify_tunnel(text), message
    if "ParseError" in names or "BadHeaders" in names:
        return "bad_response", message
    if any(n in ("ResponseDataLossError", "ConnectionLost", "ConnectionDone", "_DataLoss", "PotentialDataLoss",
                 "ConnectionResetError", "ConnectionAbortedError") for n in names):
        return "connection_lost", message
    if "Missing scheme in request url" in text or "UnsupportedURLSchemeError" in names:
        return "bad_redirect", message
    if "IgnoreRequest" in names:
        if "robots.txt" in text:
            return "robots", message
        if "redirect" in text:
            return "redirect_loop", message
    if any(n == "DownloadCancelledError" for n in names) and "max size" in text.replace("maxsize", "max size"):
        return "too_large", message
    if "MaxSizeExceeded" in names or "during decompression" in text:
        return "too_large", message  # a compression bomb, stopped at --max-size
    if "larger than download max size" in text or "download max size" in text:
        return "too_large", message
    return "other", message


def _is_tls(exc: BaseException) -> bool:
    name, module = type(exc).__name__, type(exc).__module__.lower()
    return "ssl" in module or "SSL" in name or "TLS" in name


def _classify_tunnel(text: str) -> str:
    """Error kind from a proxy's refusal to open a CONNECT tunnel (RFC 9209 wording)."""
    m = _TUNNEL.search(text)
    reason = (m.group(2) if m else text).lower()
    status = int(m.group(1)) if m else 0
    if "dns" in reason or "resolve" in reason or "not found" in reason:
        return "dns"
    if "refused" in reason:
        return "refused"
    if "timeout" in reason or "timed out" in reason or status == 504:
        return "timeout"
    if "tls" in reason or "ssl" in reason:
        return "tls"
    return "other"


def proxy_error_kind(status: int, proxy_status: str) -> str | None:
    """Error kind from an RFC 9209 ``Proxy-Status`` header on a proxy's 5xx, else None.

    >>> proxy_error_kind(502, "corp-proxy; error=dns_error; rcode=NXDOMAIN")
    'dns'
    """
    m = re.search(r"error=([a-z_]+)", proxy_status or "")
    if status < 500 or not m:
        return None
    err = m.group(1)
    if err.startswith("dns_") or err == "destination_not_found":
        return "dns"
    if err in ("connection_refused", "destination_unavailable"):
        return "refused"
    if "timeout" in err:
        return "timeout"
    if err.startswith("tls_"):
        return "tls"
    return None
