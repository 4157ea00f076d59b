"""Pipelines and extensions: detect each site (beside the reactor), store it, show progress."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet.task import LoopingCall

from detector.crawl.items import FetchedPage, RenderedPage, SiteItem
from detector.crawl.pool import EnginePool
from detector.crawl.render import SKIPPED, RenderStage, render_stage
from detector.crawl.worker import detect_site, load_engine, page_from_fetched, switched_off_messages
from detector.crawl.writer import ScanWriter
from detector.engine.network import NetworkFacts
from detector.engine.signatures import load_signatures
from detector.errors import DetectorError
from detector.store.history import DEFAULT_MISS_THRESHOLD
from detector.store.scans import ScanResult
from detector.timestamps import utc_now

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure
    from typing_extensions import Self

    from detector.engine.verdict import SiteDetection
    from detector.store.store import Store

log = logging.getLogger(__name__)
#: Reports about the signature library during a crawl (shown on stderr even when quiet).
signatures_log = logging.getLogger("detector.signatures")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


class DetectStorePipeline:
    """Run the engine on each SiteItem's pages and write scans and detections to SQLite.

    Every SiteItem becomes exactly one scan row, whatever the engine does.  Rows are written in
    batches by one :class:`~detector.crawl.writer.ScanWriter` thread, never on the reactor: at most
    ``DETECTOR_WRITE_BACKLOG`` batches wait for it, after which items wait (and with them the
    downloader) until the database takes them, so memory stays bounded while SQLite is locked.
    """

    def __init__(
        self,
        crawler: Crawler,
        db_path: str,
        *,
        detect: bool,
        workers: int,
        signatures: list[str],
        run_id: str,
        commit_every: int,
        miss_threshold: int = DEFAULT_MISS_THRESHOLD,
        backlog: int = 4,
        engine_mode: str = "detector",
        render: RenderStage | None = None,
        standalone: bool = False,
    ) -> None:
        self.crawler = crawler
        self.db_path = db_path
        self.detect = detect
        self.workers = workers
        self.signatures = signatures
        self.run_id = run_id
        self.commit_every = max(1, commit_every)
        self.miss_threshold = max(1, miss_threshold)
        self.backlog = max(1, backlog)
        self.engine_mode = engine_mode
        self.pool: EnginePool | None = None
        self.buffer: list[ScanResult] = []
        self.signatures_version = ""
        self.known: frozenset[str] | None = None
        self.writer: ScanWriter | None = None
        self.writing = 0  # batches handed to the writer and not yet committed
        self.waiting: list[defer.Deferred[None]] = []  # items waiting for the backlog to shrink
        self.failure: str | None = None
        self.switched_off: set[str] = set()  # patterns reported as switched off (by origin)
        self.ticker = LoopingCall(self._tick)
        self.render = render
        #: Under plain ``scrapy crawl domains`` (no DETECTOR_RUN_ID from detector's runner), the
        #: pipeline records the run itself, holding the database's lock for the whole crawl.
        self.standalone = standalone
        self.run_store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Read DETECTOR_* settings."""
        s = crawler.settings
        workers = s.getint("DETECTOR_DETECT_WORKERS")
        run_id = s.get("DETECTOR_RUN_ID") or new_run_id()
        crawler.stats.set_value("detector/run_id", run_id)
        pipeline = cls(
            crawler,
            s.get("DETECTOR_DB"),
            detect=s.getbool("DETECTOR_DETECT"),
            workers=max(1, os.cpu_count() or 1) if workers < 0 else workers,
            signatures=list(s.getlist("DETECTOR_SIGNATURES")),
            run_id=run_id,
            commit_every=s.getint("DETECTOR_COMMIT_EVERY"),
            miss_threshold=s.getint("DETECTOR_MISS_THRESHOLD", DEFAULT_MISS_THRESHOLD),
            backlog=s.getint("DETECTOR_WRITE_BACKLOG", 4),
            engine_mode=s.get("DETECTOR_ENGINE_MODE") or "detector",
            render=render_stage(s) if s.getbool("DETECTOR_DETECT") else None,
            standalone=not s.get("DETECTOR_RUN_ID"),
        )
        if pipeline.standalone:
            crawler.signals.connect(pipeline._finish_run, signal=signals.spider_closed)
        return pipeline

    async def open_spider(self) -> None:
        """Open and migrate the database, mirror the library, start the engine processes.

        Crawling waits until the engines are loaded: pages fetched before would only pile up.
        """
        try:
            await self._open()
        except DetectorError as exc:
            # Scrapy would log this and end the run quietly; run_crawl() turns it into an error.
            self.crawler.stats.set_value("detector/fatal", str(exc))
            raise
        finally:
            if self.writer is not None and not self.ticker.running:  # opening failed: end the thread
                self.writer.close()

    async def _open(self) -> None:
        if self.standalone:
            self._start_run()
        dirs = self.signatures or None
        library = load_signatures(dirs, layers=self.engine_mode != "wappalyzer")  # what the engine runs
        await self._open_output(library)
        self.known = frozenset(library.signatures)
        if self.detect:
            self.signatures_version = library.version
            if self.workers > 0:
                self.pool = EnginePool(self.workers, dirs, self.engine_mode)
                self.pool.on_switched_off = self._switched_off
                await self.pool.start()
            else:
                load_engine(dirs, self.engine_mode)
            if self.render is not None:
                await self.render.open(library)
                if self.render.active and self.writer is not None:
                    self.render.first = await maybe_deferred_to_future(
                        self.writer.call(lambda store: store.render_skipped()))
                if self.render.note:
                    self.crawler.stats.set_value("detector/render_note", self.render.note)
        self.ticker.start(1.0, now=False)
        self.crawler.stats.set_value("detector/ready_time", time.time())

    async def _open_output(self, library: Any) -> None:
        """Start the writer thread and mirror the library (the distributed worker sends to Redis)."""
        self.writer = ScanWriter(self.db_path)
        self.writer.start()
        await maybe_deferred_to_future(self.writer.call(lambda store: store.mirror_library(library)))

    def _start_run(self) -> None:
        """``scrapy crawl domains``: take the lock, record the run as a crawl (the spider checked
        its input already)."""
        from detector.crawl.runner import options_from_settings
        from detector.store.store import Store

        settings = self.crawler.settings
        self.run_store = Store.open(self.db_path, lock="crawl")
        try:
            self.run_store.close_dead_runs()
            self.run_store.start_run(self.run_id, "crawl", planned=None, options=options_from_settings(settings))
        except BaseException:
            self.run_store.close()
            self.run_store = None
            raise

    def _finish_run(self, reason: str) -> None:
        """Record how a ``scrapy crawl domains`` run ended, and give the lock back."""
        store, self.run_store = self.run_store, None
        if store is None:
            return
        try:
            status = ("failed" if self.failure or self.crawler.stats.get_value("detector/fatal")
                      else "interrupted" if reason == "shutdown" else "done")
            store.finish_run(self.run_id, status)
        finally:
            store.close()

    async def process_item(self, item: Any) -> Any:
        """Detect (in a worker process when there are workers), then buffer the scan row."""
        if not isinstance(item, SiteItem):
            return item
        try:
            result = await self._scan(item)
        except Exception as exc:  # noqa: BLE001 - the engine failing on a site is that site's data
            log.warning("detection failed for %s: %r", item.domain, exc)
            self.crawler.stats.inc_value("detector/detect_failed")
            result = self._failed_scan(item, exc)
        if self.render is not None and result.status == "ok" and result.detected and item.pages:
            html = page_from_fetched(item.pages[0]).html
            reasons = self.render.reasons(html, result.detections)
            if reasons:
                # At most DETECTOR_RENDER_BACKLOG sites wait for the browser or for budget.
                await self.render.offer(item.domain, reasons, len(html), lambda: self._render(item, result, reasons),
                                        lambda: self._skip_render(result, reasons))
                return item
        await self._keep(result)
        if self.render is not None:
            self.render.pump()  # the static work done earns the browser budget
        return item

    async def _skip_render(self, result: ScanResult, reasons: list[str]) -> None:
        """Keep a site the advisor named static: the render budget is spent (the next scan renders it first)."""
        self.crawler.stats.inc_value("detector/render/skipped")
        note = "over the render budget; would render for: " + "; ".join(reasons)
        await self._keep(dataclasses.replace(result, render=SKIPPED, render_note=note[:500]))

    async def _render(self, item: SiteItem, result: ScanResult, reasons: list[str]) -> None:
        """Render the site's homepage, detect again with what the browser saw, keep the scan."""
        assert self.render is not None and self.render.renderer is not None
        stats = self.crawler.stats
        try:
            snap = await self.render.renderer.render(item.pages[0].url)
            note = "; ".join(reasons) if snap.outcome == "rendered" else snap.message
            result = dataclasses.replace(result, render=snap.outcome, render_note=note[:500])
            stats.inc_value(f"detector/render/{snap.outcome}")
            if snap.read:
                rendered = RenderedPage(snap.final_url or item.pages[0].url, snap.html, snap.js, snap.dom_properties,
                                        tuple(snap.xhr))
                detections = await self._detect((*item.pages, rendered), item.network)
                result = dataclasses.replace(result, detections=tuple(detections))
        except Exception as exc:  # noqa: BLE001 - the static verdict stands; the scan says why
            log.warning("rendering %s failed: %r", item.domain, exc)
            stats.inc_value("detector/render/failed")
            result = dataclasses.replace(result, render="failed", render_note=f"{exc!r}"[:500])
        await self._keep(result)

    async def _keep(self, result: ScanResult) -> None:
        """Buffer a finished scan row (written by the ticker, or now when the batch is full)."""
        self.buffer.append(result)
        stats = self.crawler.stats
        stats.inc_value("detector/sites_done")
        stats.inc_value("detector/pages_fetched", result.pages)
        if result.status != "ok":
            stats.inc_value("detector/sites_failed")
            stats.inc_value(f"detector/error/{result.error_kind}")
        if len(self.buffer) >= self.commit_every:
            await self._room()
            self.flush()

    async def _detect(
        self, pages: Sequence[FetchedPage | RenderedPage], network: NetworkFacts | None = None
    ) -> list[SiteDetection]:
        if self.pool is not None:
            return await maybe_deferred_to_future(self.pool.detect(pages, network))
        detections = detect_site(pages, network=network)
        off = load_engine(self.signatures or None, self.engine_mode).switched_off()
        if off:
            self._switched_off(switched_off_messages(off, [p for p in pages if isinstance(p, FetchedPage)]))
        return detections

    async def _scan(self, item: SiteItem) -> ScanResult:
        detections: list[SiteDetection] = []
        if self.detect and item.scan.status == "ok" and item.pages:
            detections = await self._detect(item.pages, item.network)
        return dataclasses.replace(
            item.scan, run_id=self.run_id, signatures_version=self.signatures_version,
            detections=tuple(detections), detected=self.detect,
        )

    def _switched_off(self, messages: list[str]) -> None:
        """Report each pattern switched off once (several workers may switch off the same one)."""
        for message in messages:
            if message.split(": switched off", 1)[0] in self.switched_off:
                continue
            self.switched_off.add(message.split(": switched off", 1)[0])
            signatures_log.warning("%s", message)
            self.crawler.stats.inc_value("detector/patterns_switched_off")

    def _failed_scan(self, item: SiteItem, exc: BaseException) -> ScanResult:
        """The row of a site the engine failed on: an error, so nothing is added or missed."""
        return dataclasses.replace(
            item.scan, run_id=self.run_id, status="error", error_kind="other",
            error_message=f"detection failed on this site's {len(item.pages)} page(s): {exc}"[:500],
            signatures_version=self.signatures_version, detected=False,
        )

    def _record_unfinished(self) -> None:
        """Domains started but never finished (the run was stopped, or a bug) still get a row."""
        spider = self.crawler.spider
        sites = getattr(spider, "sites", None) or {}
        for site in list(sites.values()):
            self.buffer.append(
                ScanResult(
                    domain=site.domain,
                    run_id=self.run_id,
                    started_at=site.started_at,
                    finished_at=utc_now(),
                    status="error",
                    error_kind="other",
                    error_message="the run was stopped before this domain was finished",
                    pages=0,
                    signatures_version=self.signatures_version,
                )
            )
            self.crawler.stats.inc_value("detector/sites_unfinished")
        sites.clear()

    # ------------------------------------------------------------------ writing
    async def _room(self) -> None:
        """Wait while ``backlog`` batches are already waiting for the writer."""
        while self.writing >= self.backlog and self.failure is None:
            d: defer.Deferred[None] = defer.Deferred()
            self.waiting.append(d)
            await maybe_deferred_to_future(d)

    def _tick(self) -> None:
        """Every second, write what is buffered, unless the writer is behind (then items wait)."""
        if self.writing < self.backlog:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered scans to the writer thread as one transaction (never waits)."""
        if not self.buffer or self.writer is None:
            return
        batch, self.buffer = self.buffer, []
        if self.failure is not None:
            return  # the database cannot be written; the crawl is ending with that error
        self.writing += 1
        d = self.writer.call(lambda store: self._write(store, batch))
        d.addCallbacks(self._written, self._write_failed)

    def _write(self, store: Store, batch: list[ScanResult]) -> int:
        # In the writer thread.  record_scans registers each domain as it records its scan.
        if self.failure is not None:
            return 0  # an earlier batch failed and the crawl is ending: do not wait on SQLite again
        return store.record_scans(batch, miss_threshold=self.miss_threshold, known=self.known)

    def _written(self, _count: int) -> None:
        self.writing -= 1
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)

    def _write_failed(self, failure: Failure) -> None:
        self.writing -= 1
        if self.failure is None:
            self.failure = f"scans could not be written to {self.db_path}: {failure.getErrorMessage()}"
            self.crawler.stats.set_value("detector/failed", self.failure)
            log.error("%s", self.failure)
            engine = self.crawler.engine
            if engine is not None and engine.spider is not None:
                # Nothing more can be stored: stop fetching instead of crawling for nothing.
                deferred_from_coro(engine.close_spider_async(reason="storage_failed"))
        self._written(0)

    async def close_spider(self) -> None:
        """Write what is left, wait for the writer to commit it, and stop the engine processes."""
        if self.ticker.running:
            self.ticker.stop()
        try:
            if self.render is not None:
                await self.render.close()  # the renders still queued end as scans too
            if self.writer is not None:
                self._record_unfinished()
                self.flush()
                await maybe_deferred_to_future(self.writer.close())
        finally:
            if self.pool is not None:
                await self.pool.stop()


class ProgressExtension:
    """A live progress line on stderr: done/total, pages/s, errors, ETA (DETECTOR_PROGRESS)."""

    def __init__(self, crawler: Crawler, total: int) -> None:
        self.crawler = crawler
        self.total = total
        self.started = time.monotonic()
        self.task = LoopingCall(self.show)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """On only when DETECTOR_PROGRESS is set (the CLI sets it when stderr is a TTY)."""
        if not crawler.settings.getbool("DETECTOR_PROGRESS"):
            raise NotConfigured
        ext = cls(crawler, crawler.settings.getint("DETECTOR_TOTAL"))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self) -> None:
        """Start redrawing twice a second."""
        self.started = time.monotonic()
        self.task.start(0.5, now=False)

    def closed(self) -> None:
        """Draw the last state and end the line."""
        if self.task.running:
            self.task.stop()
        self.show()
        sys.stderr.write("\n")
        sys.stderr.flush()

    def show(self) -> None:
        """Redraw the progress line."""
        sys.stderr.write("\r" + self.line() + "\x1b[K")
        sys.stderr.flush()

    def line(self) -> str:
        """``1,204/50,000 domains  38.2 pages/s  errors 97  ETA 21m``."""
        stats = self.crawler.stats
        done = int(stats.get_value("detector/sites_done", 0))
        pages = int(stats.get_value("response_received_count", 0))
        errors = int(stats.get_value("detector/sites_failed", 0))
        invalid = int(stats.get_value("detector/invalid_lines", 0))
        elapsed = max(1e-6, time.monotonic() - self.started)
        rate = pages / elapsed
        total = f"/~{self.total:,}" if self.total else ""
        eta = ""
        if self.total and done:
            left = max(0, self.total - done - invalid) * elapsed / done
            eta = f"  ETA {_duration(left)}"
        return f"{done:,}{total} domains  {rate:.1f} pages/s  errors {errors:,}{eta}"


def _duration(seconds: float) -> str:
    """``42s``, ``7m``, ``2h05m``.

    >>> _duration(42), _duration(420), _duration(7500)
    ('42s', '7m', '2h05m')
    """
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"

