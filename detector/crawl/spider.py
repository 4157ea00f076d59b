"""The ``domains`` spider: homepage (https, then http) plus a few telling same-site pages.

Run it as ``scrapy crawl domains -a input=domains.txt`` or through ``detector crawl``.
Each domain ends as exactly one :class:`~detector.crawl.items.SiteItem`, failures included.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater

from detector.crawl.items import FetchedPage, PageOutcome, PageResult, SiteItem, count_outcome
from detector.crawl.middlewares import classify_failure, proxy_error_kind
from detector.errors import DetectorError
from detector.inputs import DomainEntry, InputError, read_domains, registered_domain
from detector.store.scans import ScanResult
from detector.timestamps import utc_now

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure

input_log = logging.getLogger("detector.input")

#: Link keywords by kind, most telling first: each kind says something a sales team can use.
LINK_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pricing", ("pricing", "plans", "price", "preise", "tarif")),
    ("shop", ("cart", "checkout", "shop", "store", "basket", "products", "warenkorb")),
    ("login", ("login", "log-in", "signin", "sign-in", "account", "dashboard", "app")),
    ("careers", ("careers", "jobs", "career", "join-us", "karriere", "hiring")),
    ("contact", ("contact", "demo", "get-started", "request", "kontakt", "quote")),
    ("blog", ("blog", "news", "articles", "insights", "resources")),
)
_HREF = re.compile(rb"""<a\s[^>]{0,400}?href\s*=\s*["']?([^"'\s>#]{1,500})""", re.IGNORECASE)
_SKIP_EXT = re.compile(r"\.(?:pdf|jpe?g|png|gif|svg|webp|zip|gz|mp4|mp3|docx?|xlsx?|pptx?|css|js|xml|json)$", re.IGNORECASE)
#: Error kinds after which plain http:// is tried when https:// failed.
FALLBACK_KINDS = frozenset({"tls", "refused", "timeout", "connection_lost", "bad_response", "other"})
#: 4xx answers that say "not now" rather than "not here".
TRANSIENT_4XX = frozenset({408, 425, 429})


def page_outcome(kind: str | None, status: int | None = None) -> PageOutcome:
    """The outcome of a page from its error kind (None: fetched fine) and HTTP status.

    >>> [page_outcome(k, s) for k, s in [(None, 200), ("http_4xx", 404), ("http_4xx", 429), ("http_5xx", 503)]]
    ['ok', 'gone', 'transient', 'transient']
    >>> [page_outcome(k) for k in ("robots", "offsite", "redirect_loop", "timeout", "dns")]
    ['blocked', 'offsite', 'gone', 'transient', 'transient']
    """
    if kind is None:
        return "ok"
    if kind == "robots":
        return "blocked"
    if kind == "offsite":
        return "offsite"
    if kind == "http_4xx":
        return "transient" if status in TRANSIENT_4XX else "gone"
    if kind in ("redirect_loop", "too_large", "not_html", "blocked_address", "bad_redirect"):
        return "gone"  # the page answers the same way every time: nothing to read there
    return "transient"  # timeout, 5xx, refused, tls, dns, other: may pass on a later run


def fallback_error(first: tuple[str, str], second: tuple[str, str], first_url: str, second_url: str) -> tuple[str, str]:
    """The error of a homepage whose https attempt failed, then its http attempt too.

    The kind is the http attempt's own, except when nothing listens on port 80 (refused): then
    the https failure is what the site has, and its kind is kept.  The message states both.

    >>> fallback_error(("tls", "bad handshake"), ("refused", "refused"), "https://a.test/", "http://a.test/")
    ('tls', 'https://a.test/: tls: bad handshake; then http://a.test/: refused: refused')
    >>> fallback_error(("refused", "r"), ("timeout", "t"), "https://a.test/", "http://a.test/")[0]
    'timeout'
    """
    kind = first[0] if second[0] == "refused" else second[0]
    return kind, f"{first_url}: {first[0]}: {first[1]}; then {second_url}: {second[0]}: {second[1]}"


def is_offsite(url: str, domain: str) -> bool:
    """True when ``url`` lies on another registered domain than the site ``domain``.

    >>> is_offsite("https://login.sso-vendor.test/x", "acme.test"), is_offsite("https://www.acme.test/", "acme.test")
    (True, False)
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == domain or host.endswith("." + domain):
        return False
    final_site = registered_domain(host)
    return bool(final_site) and final_site != (registered_domain(domain) or domain)
HTML_TYPES = ("text/html", "application/xhtml+xml")


def pick_links(base_url: str, body: bytes, site: str, limit: int) -> list[str]:
    """Up to ``limit`` same-site links, one per kind (pricing, shop, login, careers...).

    >>> html = b'<a href="/blog/">B</a><a href="/pricing">P</a><a href="https://x.com/jobs">J</a>'
    >>> pick_links("https://acme.test/", html, "acme.test", 2)
    ['https://acme.test/pricing', 'https://acme.test/blog/']
    """
    if limit <= 0:
        return []
    best: dict[str, tuple[int, str]] = {}
    base = base_url.rstrip("/")
    for position, m in enumerate(_HREF.finditer(body[:500_000])):
        href = m.group(1).decode("utf-8", "replace").strip()
        if href.startswith(("mailto:", "tel:", "javascript:", "data:")):
            continue
        url = urljoin(base_url, href)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if url.rstrip("/") == base or _SKIP_EXT.search(parts.path):
            continue
        host = parts.hostname
        if host != site and not host.endswith("." + site) and registered_domain(host) != site:
            continue
        path = (parts.path + "?" + parts.query).lower()
        sub = host[: -len(site)].lower()
        for rank, (kind, words) in enumerate(LINK_KINDS):
            if kind in best:
                continue
            if any(w in path or sub.startswith(w + ".") for w in words):
                best[kind] = (rank * 10_000 + position, parts._replace(fragment="").geturl())
                break
    chosen = sorted(best.values())[:limit]
    return [url for _, url in chosen]


@dataclass(slots=True)
class _Site:
    domain: str
    started_at: str
    scheme: str = "https"
    pending: int = 0
    pages: list[FetchedPage] = field(default_factory=list)
    home: Any = None  # the homepage response fields kept for the SiteItem
    first_error: tuple[str, str] | None = None  # the https failure, while http is tried
    results: list[PageResult] = field(default_factory=list)  # how each requested page ended


class DomainsSpider(scrapy.Spider):
    """Fetch each domain's homepage and a few telling pages; yield one SiteItem per domain."""

    name = "domains"

    def __init__(self, input: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.input = input
        self.sites: dict[str, _Site] = {}
        self.invalid_lines = 0
        self.schemes: list[str] = ["https", "http"]
        self.run_id = ""  # the pipeline sets every scan's run id; this is only a default

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> DomainsSpider:
        """Read DETECTOR_SCHEMES (the schemes to try, in order) and DETECTOR_RUN_ID."""
        spider = super().from_crawler(crawler, *args, **kwargs)
        schemes = [s for s in crawler.settings.getlist("DETECTOR_SCHEMES") if s in ("https", "http")]
        spider.schemes = schemes or ["https", "http"]
        spider.run_id = str(crawler.settings.get("DETECTOR_RUN_ID") or "")
        if not spider.run_id:
            spider.check_input()
        return spider

    def check_input(self) -> None:
        """Under plain ``scrapy crawl domains``: a missing, binary or column-less input stops the
        process now, with one line and the exit status ``detector crawl`` would give (66, 65, 2).

        (``detector crawl`` checks its input before Scrapy starts.)  SystemExit, because Scrapy
        would log any other exception with a traceback and go on to exit 0 or 1.
        """
        from detector.inputs import check_inputs

        try:
            for warning in check_inputs(self.input_paths(), self.crawler.settings.get("DETECTOR_COLUMN") or None):
                input_log.warning("%s", warning.removeprefix("warning: "))
        except DetectorError as exc:
            code = 2 if isinstance(exc, InputError) else exc.exit_code
            print(f"Error: {exc}", file=sys.stderr)
            raise SystemExit(code) from None

    # ---------------------------------------------------------------- start
    async def start(self) -> AsyncIterator[scrapy.Request]:
        """One homepage request per valid domain, produced lazily from the input files."""
        for entry in self._entries():
            if isinstance(entry, DomainEntry):
                await self._backout()
                site = _Site(entry.domain, utc_now(), pending=1)
                self.sites[entry.domain] = site
                yield self._home_request(site, self.schemes[0])
            else:
                self.invalid_lines += 1
                self.crawler.stats.inc_value("detector/invalid_lines")
                input_log.warning("%s; skipped", entry.describe())

    async def _backout(self) -> None:
        """Wait while the downloader is full, so the input is read only as fast as it is crawled
        (Scrapy keeps reading start() into the scheduler otherwise)."""
        engine = self.crawler.engine
        while engine is not None and engine.running and engine.needs_backout():
            await maybe_deferred_to_future(deferLater(_reactor(), 0.01, lambda: None))

    def input_paths(self) -> list[str]:
        """The domain lists to read (``-a input=`` or DETECTOR_INPUT, comma-separated; ``-``: stdin)."""
        raw = self.input or self.crawler.settings.get("DETECTOR_INPUT") or ""
        paths = [p for p in str(raw).split(",") if p] if raw != "-" else ["-"]
        if not paths:
            raise InputError("no input: give a domain list, e.g. scrapy crawl domains -a input=domains.txt")
        return paths

    def _entries(self) -> Iterator[Any]:
        settings = self.crawler.settings
        paths = self.input_paths()
        return read_domains(
            paths,
            column=settings.get("DETECTOR_COLUMN") or None,
            keep_subdomains=settings.getbool("DETECTOR_KEEP_SUBDOMAINS"),
            allow_ip=settings.getbool("DETECTOR_ALLOW_IP"),
        )

    def _home_request(self, site: _Site, scheme: str) -> scrapy.Request:
        site.scheme = scheme
        return scrapy.Request(
            f"{scheme}://{site.domain}/",
            callback=self.parse_home,
            errback=self.home_failed,
            dont_filter=True,  # we de-duplicate domains ourselves; a redirect loop must not vanish
            meta={"domain": site.domain},
            priority=-1,  # finish sites already started before opening new ones
        )

    # ---------------------------------------------------------------- homepage
    def parse_home(self, response: Response) -> Iterator[Any]:
        """Check the homepage (HTML? same site?), keep it, and queue the telling pages."""
        site = self.sites.get(response.meta["domain"])
        if site is not None:
            yield from self._guarded(site, self._parse_home(site, response), "reading the homepage")

    def _guarded(self, site: _Site, work: Iterator[Any], doing: str) -> Iterator[Any]:
        """Run a callback's work; whatever it raises, the site still ends as one SiteItem."""
        try:
            yield from work
        except Exception as exc:
            self.logger.exception("%s of %s failed", doing, site.domain)
            if self.sites.get(site.domain) is site:
                site.pending = 0
                yield self._finish(site, "other", f"internal error while {doing}: {exc!r}")

    def _parse_home(self, site: _Site, response: Response) -> Iterator[Any]:
        site.home = response
        if is_offsite(response.url, site.domain):
            # The homepage is another company's (a rebrand, a parked name, an acquisition):
            # nothing it shows is this account's, so the scan says where it went and no more.
            yield self._finish(site, "offsite", f"redirected to {response.url}")
            return
        if not _is_html(response):
            ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1") or "no Content-Type"
            yield self._finish(site, "not_html", f"homepage is {ctype}, not HTML")
            return
        site.pages.append(_fetched(response))
        site.results.append(_result(f"{site.scheme}://{site.domain}/", "ok", response, homepage=True))
        own_site = registered_domain(site.domain) or site.domain
        links = pick_links(response.url, response.body, own_site, self.crawler.settings.getint("DETECTOR_PAGES"))
        site.pending = len(links)
        for url in links:
            yield scrapy.Request(
                url,
                callback=self.parse_page,
                errback=self.page_failed,
                dont_filter=True,
                meta={"domain": site.domain},
            )
        if not links:
            yield self._finish(site)

    def home_failed(self, failure: Failure) -> Iterator[Any]:
        """Turn a homepage failure into data; after an https failure, try http once."""
        site = self.sites.get(failure.request.meta["domain"])  # type: ignore[attr-defined]
        if site is not None:
            yield from self._guarded(site, self._home_failed(site, failure), "reading a homepage failure")

    def _home_failed(self, site: _Site, failure: Failure) -> Iterator[Any]:
        url = failure.request.url  # type: ignore[attr-defined]
        kind, message, response = _failure_kind(failure)
        if kind != "blocked_address" and is_offsite(url, site.domain):
            # Redirected to another company's site, which then failed: still not this site's page
            # (and no http retry: the redirect would lead to the same place).
            yield self._finish(site, "offsite", f"redirected to {url}, which failed: {kind}: {message}", final_url=url)
            return
        if response is not None and kind in ("http_4xx", "http_5xx"):
            site.home = response
        position = self.schemes.index(site.scheme)
        if position + 1 < len(self.schemes) and kind in FALLBACK_KINDS:
            site.first_error = (kind, message)
            self.crawler.stats.inc_value("detector/http_fallback")
            yield self._home_request(site, self.schemes[position + 1])
            return
        if site.first_error is not None:
            first_url = f"{self.schemes[position - 1]}://{site.domain}/"
            kind, message = fallback_error(site.first_error, (kind, message), first_url, url)
        yield self._finish(site, kind, message)

    # ---------------------------------------------------------------- other pages
    def parse_page(self, response: Response) -> Iterator[Any]:
        """Keep an extra page when it is HTML and on the site."""
        site = self.sites.get(response.meta["domain"])
        if site is not None:  # None: the site was already recorded
            yield from self._guarded(site, self._parse_page(site, response), "reading a page")

    def _parse_page(self, site: _Site, response: Response) -> Iterator[Any]:
        requested = (response.meta.get("redirect_urls") or [response.url])[0]  # the link, before redirects
        if is_offsite(response.url, site.domain):
            # /login ending on an SSO vendor: that vendor's page says nothing about this account.
            site.results.append(_result(requested, "offsite", response, f"redirected to {response.url}"))
        elif not _is_html(response):
            ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1") or "no Content-Type"
            site.results.append(_result(requested, "gone", response, f"not HTML ({ctype})"))
        else:
            site.pages.append(_fetched(response))
            site.results.append(_result(requested, "ok", response))
        yield from self._page_done(site)

    def page_failed(self, failure: Failure) -> Iterator[Any]:
        """An extra page failing does not fail the site; its outcome says whether the scan is complete."""
        site = self.sites.get(failure.request.meta["domain"])  # type: ignore[attr-defined]
        self.crawler.stats.inc_value("detector/extra_page_failed")
        if site is not None:
            yield from self._guarded(site, self._page_failed(site, failure), "reading a page failure")

    def _page_failed(self, site: _Site, failure: Failure) -> Iterator[Any]:
        kind, message, response = _failure_kind(failure)
        status = response.status if response is not None else None
        request: scrapy.Request = failure.request  # type: ignore[attr-defined]
        url = (request.meta.get("redirect_urls") or [request.url])[0]  # the link, before redirects
        outcome = page_outcome(kind, status)
        if is_offsite(request.url, site.domain):
            # /login sent to an SSO vendor that then timed out or forbids robots: the vendor's
            # trouble, not this site's; the scan stays complete.
            outcome = "offsite"
        site.results.append(PageResult(url, outcome, request.url, status, f"{kind}: {message}"))
        yield from self._page_done(site)

    def _page_done(self, site: _Site) -> Iterator[Any]:
        site.pending -= 1
        if site.pending <= 0:
            yield self._finish(site)

    def _finish(
        self, site: _Site, error_kind: str | None = None, message: str | None = None, *, final_url: str | None = None
    ) -> SiteItem:
        self.sites.pop(site.domain, None)
        home = site.home
        final_url = final_url or (home.url if home is not None else None)
        if error_kind is not None:
            # The homepage's own outcome; extra pages fetched so far say nothing without it.
            status = home.status if home is not None else None
            url = f"{site.scheme}://{site.domain}/"
            site.results = [PageResult(url, page_outcome(error_kind, status), final_url, status, message or "",
                                       homepage=True)]
            site.pages = []
        stats = self.crawler.stats
        for r in site.results:
            stats.inc_value(f"detector/page/{r.outcome}")
        scan = ScanResult(
            domain=site.domain,
            run_id=self.run_id,
            started_at=site.started_at,
            finished_at=utc_now(),
            status="error" if error_kind else "ok",
            error_kind=error_kind,
            error_message=message,
            http_status=home.status if home is not None else None,
            final_url=final_url,
            offsite=error_kind == "offsite",
            pages=len(site.pages),
            pages_failed=count_outcome(site.results, "transient"),
            pages_offsite=count_outcome(site.results, "offsite"),
            pages_blocked=count_outcome(site.results, "blocked"),
        )
        return SiteItem(scan, tuple(site.pages), tuple(site.results))


def _reactor() -> Any:
    from twisted.internet import reactor  # imported late: importing it installs a reactor

    return reactor


def _is_html(response: Response) -> bool:
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    if ctype:
        return any(t in ctype for t in HTML_TYPES)
    head = response.body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<!--")) or b"<html" in head


def _result(url: str, outcome: PageOutcome, response: Response, reason: str = "", *, homepage: bool = False) -> PageResult:
    return PageResult(url, outcome, response.url, response.status, reason, homepage)


def _failure_kind(failure: Failure) -> tuple[str, str, Response | None]:
    """(error kind, message, the response if there was one) for a failed request."""
    exc = failure.value or RuntimeError("unknown failure")
    if isinstance(exc, HttpError):
        response = exc.response
        status = response.status
        kind = proxy_error_kind(status, (response.headers.get(b"Proxy-Status") or b"").decode("latin-1"))
        if kind is not None:
            return kind, f"HTTP {status} from the proxy for {response.url}", None
        if 300 <= status < 400:
            # A redirect Scrapy would not follow: to file:, data:, ftp:, or with no Location.
            location = (response.headers.get(b"Location") or b"").decode("latin-1")[:200]
            return "bad_redirect", f"HTTP {status} from {response.url} to {location or 'nowhere'!r}: not an http(s) URL, not followed", None
        kind = "http_4xx" if 400 <= status < 500 else "http_5xx" if status >= 500 else "other"
        return kind, f"HTTP {status} from {response.url}", response
    kind, message = classify_failure(exc)
    if kind == "robots":
        url = failure.request.url  # type: ignore[attr-defined]
        parts = urlsplit(url)
        message = f"{parts.scheme}://{parts.netloc}/robots.txt forbids fetching {url}"
    return kind, message, None


def _fetched(response: Response) -> FetchedPage:
    headers = {
        k.decode("latin-1").lower(): [v.decode("latin-1") for v in vs] for k, vs in response.headers.items()
    }
    return FetchedPage(response.url, response.status, headers, response.body)
