"""What the spider hands to the pipelines: one SiteItem per domain, with its fetched pages.

Every page the spider asks for (the homepage and each extra page) ends as one
:data:`PageOutcome`, kept on the item as a :class:`PageResult`; the scan's status and
completeness are read from those outcomes (see :func:`count_outcome`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from detector.engine.network import NetworkFacts
    from detector.store.scans import (
        ScanResult,  # the engine workers import this module: no SQLite there
    )

#: How one requested page ended:
#:
#: - ``ok``: fetched, HTML, on the site: it is part of the domain's verdict.
#: - ``gone``: nothing to read there for good (404, 410 and other lasting 4xx answers, a page
#:   that is not HTML, a redirect loop, a body over the size limit): a complete scan.
#: - ``transient``: may pass on a later run (timeout, 5xx, 408/429, connection or DNS
#:   errors): what that page showed before must not count as missing (the scan is partial).
#: - ``blocked``: robots.txt forbids it, so it is not fetched (nor on any later run): complete.
#: - ``offsite``: its redirects end on another registered domain (an SSO vendor, a shop
#:   platform): what it shows belongs to someone else, so it is left out of the verdict.
PageOutcome = Literal["ok", "gone", "transient", "blocked", "offsite"]
PAGE_OUTCOMES: tuple[PageOutcome, ...] = get_args(PageOutcome)


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """One HTML page of a site as fetched: URL, status, headers {name: [values]}, body."""

    url: str
    status: int
    headers: dict[str, list[str]]
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page as a browser rendered it (see detector.crawl.render): the rendered DOM, the
    values of the library's js paths, dom properties and XHR/fetch hosts.  The engine reads it
    like a fetched page; its evidence says ``"tier": "rendered"``."""

    url: str
    html: str = field(repr=False)
    js: dict[str, str] = field(default_factory=dict)
    dom_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    xhr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PageResult:
    """How one requested page ended: its outcome, where redirects led, and why (short text)."""

    url: str
    outcome: PageOutcome
    final_url: str | None = None
    status: int | None = None
    reason: str = ""
    homepage: bool = False


@dataclass(frozen=True, slots=True)
class SiteItem:
    """A domain's crawl outcome: its scan (the one model stored), its pages and their results.

    ``scan`` is what the spider learned (status, error, final URL, page counts); the pipeline
    adds only what it knows (run id, signature version, detections) with
    :func:`dataclasses.replace`.  ``pages`` are the pages the engine reads (outcome ``ok``);
    ``results`` tell how every requested page ended, those included.
    """

    scan: ScanResult
    pages: tuple[FetchedPage | RenderedPage, ...] = field(default_factory=tuple, repr=False)
    results: tuple[PageResult, ...] = field(default_factory=tuple)
    #: What DNS and the https certificate say about the site (the DNS pipeline adds it).
    network: NetworkFacts | None = None

    @property
    def domain(self) -> str:
        """The domain this item is about."""
        return self.scan.domain


def count_outcome(results: Iterable[PageResult], outcome: PageOutcome) -> int:
    """Extra pages (not the homepage) that ended with this outcome."""
    return sum(1 for r in results if r.outcome == outcome and not r.homepage)
