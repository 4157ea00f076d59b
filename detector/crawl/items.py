"""What the spider hands to the pipelines: one SiteItem per domain, with its fetched pages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """One HTML page of a site as fetched: URL, status, headers {name: [values]}, body."""

    url: str
    status: int
    headers: dict[str, list[str]]
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SiteItem:
    """A domain's crawl outcome: status, error (kind and message), final URL and pages."""

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
    #: Extra pages that failed for a reason that may pass (timeout, connection, 5xx).
    pages_failed: int = 0
