"""What the spider hands to the pipelines: one SiteItem per domain, with its fetched pages.

Every page the spider asks for (the homepage and each extra page) ends as one
:data:`PageOutcome`, kept on the item as a :class:`PageResult`; the scan's status and
completeness are read from those outcomes (see :meth:`SiteItem.pages_failed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

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
    """A domain's crawl outcome: status, error (kind and message), final URL and pages.

    ``pages`` are the pages the engine reads (outcome ``ok``); ``results`` tell how every
    requested page ended, those included.
    """

    domain: str
    started_at: str
    finished_at: str
    status: str
    error_kind: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    offsite: bool = False
    pages: tuple[FetchedPage, ...] = field(default_factory=tuple, repr=False)
    results: tuple[PageResult, ...] = field(default_factory=tuple)

    def count(self, outcome: PageOutcome) -> int:
        """Extra pages (not the homepage) that ended with this outcome."""
        return sum(1 for r in self.results if r.outcome == outcome and not r.homepage)

    @property
    def pages_failed(self) -> int:
        """Extra pages that failed for a reason that may pass: the scan is partial."""
        return self.count("transient")

    @property
    def pages_offsite(self) -> int:
        """Extra pages whose redirects left the site: recorded, never part of the verdict."""
        return self.count("offsite")
