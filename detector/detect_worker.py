"""Detection beside the reactor: engine processes that turn a site's pages into a verdict.

No Scrapy here: a worker process imports only the engine, so it starts fast and the reactor
process keeps its core for networking.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Sequence

from detector.engine import Engine
from detector.items import FetchedPage
from detector.page import Page
from detector.verdict import SiteDetection, merge_site

_ENGINE: Engine | None = None


def load_engine(directories: Sequence[str] | None) -> Engine:
    """Load the engine once per process (``None`` = the bundled library)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine.from_directories(list(directories) if directories else None)
    return _ENGINE


def page_from_fetched(page: FetchedPage) -> Page:
    """The engine's Page for a fetched page (same shape as ``detect --cases`` builds)."""
    return Page.from_http(page.url, status=page.status, headers=page.headers, body=page.body)


def detect_site(pages: Sequence[FetchedPage], engine: Engine | None = None) -> list[SiteDetection]:
    """Run the engine on every page of a site and merge the results into one verdict."""
    eng = engine if engine is not None else _ENGINE
    if eng is None:
        raise RuntimeError("detect_site called in a process where load_engine() did not run")
    return merge_site((p.url, eng.detect(page_from_fetched(p))) for p in pages)


def _ping() -> int:
    return os.getpid()


class DetectPool:
    """A pool of engine processes; ``submit(pages)`` returns a Future of the site verdict."""

    def __init__(self, workers: int, directories: Sequence[str] | None) -> None:
        # spawn, not fork: the reactor process has threads, and forking those is unsafe.
        ctx = multiprocessing.get_context("spawn")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=load_engine, initargs=(directories,)
        )

    def warm_up(self) -> None:
        """Start every worker now (each loads the engine) instead of at the first page."""
        for _ in range(self.workers):
            self._pool.submit(_ping)

    def submit(self, pages: Sequence[FetchedPage]) -> Future[list[SiteDetection]]:
        """Detect a site's pages in a worker process."""
        return self._pool.submit(detect_site, list(pages))

    def close(self) -> None:
        """Stop the workers (waits for running jobs)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    """Engine processes to use: one per CPU."""
    return max(1, os.cpu_count() or 1)
