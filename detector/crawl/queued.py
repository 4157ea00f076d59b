"""``detector worker``: a crawler that takes its domains from Redis and sends results back.

The spider is the ``domains`` spider with another source: instead of reading files, it leases
domains from the oldest open run in Redis (see :mod:`detector.crawl.distributed`), as fast as
its downloader takes them, and renews its leases while it works.  The pipeline detects exactly
as a local crawl does, then hands each batch of scans to Redis instead of SQLite.  Redis is
only ever spoken to from one thread beside the reactor, so a slow or restarting Redis holds
back results (and, through the pipeline's backlog, new downloads), never the downloads in
flight.

scrapy-redis is what builds the client (``REDIS_URL``/``REDIS_PARAMS`` settings, as in any
scrapy-redis project).  Its scheduler and ``RedisSpider`` are not used: they pop requests
without a lease (a killed worker loses what it popped), the scheduler would scatter one site's
pages over several workers while a site's verdict needs them together, and ``RedisSpider``
feeds a batch only when the spider is idle, which empties the pipeline between batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import LoopingCall, deferLater

from detector.crawl.distributed import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    PATIENCE_SECONDS,
    REDIS_PARAMS,
    DistributedError,
    RunQueue,
    redact,
    worker_name,
)
from detector.crawl.items import SiteItem
from detector.crawl.pipelines import DetectStorePipeline
from detector.crawl.runner import CrawlOptions, CrawlReport, run_crawl
from detector.crawl.spider import DomainsSpider, _reactor, _Site
from detector.crawl.writer import OwnerThread
from detector.timestamps import utc_now

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from detector.store.scans import ScanResult

#: Domains asked for at once (a lease round trip per batch, not per domain).
LEASE_BATCH = 8


def open_queue(settings: Any) -> RunQueue:
    """The worker's queue, its client built by scrapy-redis from REDIS_URL and REDIS_PARAMS."""
    from scrapy_redis.connection import get_redis_from_settings

    url = settings.get("REDIS_URL")
    return RunQueue.connect(
        url,
        client=get_redis_from_settings(settings),
        prefix=settings.get("DETECTOR_REDIS_PREFIX"),
        lease=settings.getfloat("DETECTOR_LEASE_SECONDS", LEASE_SECONDS),
        max_attempts=settings.getint("DETECTOR_MAX_ATTEMPTS", MAX_ATTEMPTS),
        patience=settings.getfloat("DETECTOR_REDIS_PATIENCE", PATIENCE_SECONDS),
    )


class QueueSpider(DomainsSpider):
    """The domains spider fed from Redis: lease, crawl, let the pipeline complete."""

    name = "queue"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = worker_name()
        #: Domains this worker holds a lease on, until their result is in Redis: domain -> run.
        self.leased: dict[str, str] = {}
        self.finished = 0  # results accepted since the last heartbeat
        self.drain = False
        self.lease_seconds = LEASE_SECONDS
        self.link: OwnerThread[RunQueue] | None = None
        self.beat: LoopingCall | None = None  # made in start(): making it imports the reactor
        self._beats = 0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> QueueSpider:
        """Read DETECTOR_WORKER_ID, DETECTOR_DRAIN, DETECTOR_LEASE_SECONDS; prepare the Redis thread."""
        spider: QueueSpider = super().from_crawler(crawler, *args, **kwargs)  # type: ignore[assignment]
        s = crawler.settings
        spider.worker = s.get("DETECTOR_WORKER_ID") or spider.worker
        spider.drain = s.getbool("DETECTOR_DRAIN")
        spider.lease_seconds = s.getfloat("DETECTOR_LEASE_SECONDS", LEASE_SECONDS)
        spider.link = OwnerThread(lambda: open_queue(s), "detector-redis")
        return spider

    def queue_call(self, task: Any) -> Any:
        """Run ``task(queue)`` on the Redis thread; a Deferred."""
        assert self.link is not None
        return self.link.call(task)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Lease domains as the downloader takes them; with DETECTOR_DRAIN, end when Redis is idle."""
        self.beat = LoopingCall(self._beat)
        self.beat.start(max(0.2, min(5.0, self.lease_seconds / 3)), now=True)
        while True:
            await self._backout()
            try:
                got: list[tuple[str, str]] = await maybe_deferred_to_future(
                    self.queue_call(lambda q: q.lease(self.worker, LEASE_BATCH)))
            except DistributedError as exc:  # Redis gone for longer than its patience: stop, exit 1
                self.crawler.stats.set_value("detector/failed", str(exc))
                return
            if not got:
                if self.drain and not self.leased and await maybe_deferred_to_future(
                        self.queue_call(lambda q: q.idle())):
                    return
                await maybe_deferred_to_future(deferLater(_reactor(), 0.5, lambda: None))
                continue
            clash = []
            for run_id, domain in got:
                if domain in self.leased:  # the same domain in two runs at once: later
                    clash.append((run_id, domain))
                    continue
                self.leased[domain] = run_id
                site = _Site(domain, utc_now(), pending=1)
                self.sites[domain] = site
                yield self._home_request(site, self.schemes[0])
            if clash:
                self._give_back(clash)

    def _give_back(self, pairs: list[tuple[str, str]]) -> None:
        self.queue_call(lambda q: q.release(self.worker, pairs))

    def _finish(self, site: _Site, error_kind: str | None = None, message: str | None = None, *,
                final_url: str | None = None) -> SiteItem:
        item = super()._finish(site, error_kind, message, final_url=final_url)
        run_id = self.leased.get(site.domain, "")
        return dataclasses.replace(item, scan=dataclasses.replace(item.scan, run_id=run_id))

    def _beat(self) -> None:
        """Renew leases, say this worker is alive, and now and then reap expired leases."""
        if self.link is None:
            return
        pairs = [(run, domain) for domain, run in self.leased.items()]
        finished, self.finished = self.finished, 0
        self._beats += 1
        reap = self._beats % 3 == 1

        def task(q: RunQueue) -> None:
            q.renew(self.worker, pairs)
            q.heartbeat(self.worker, finished)
            if reap:
                q.reap()

        self.queue_call(task).addErrback(lambda f: self.logger.warning("heartbeat failed: %s", f.getErrorMessage()))

    def stop_beating(self) -> None:
        """Stop the heartbeat (the run is ending)."""
        if self.beat is not None and self.beat.running:
            self.beat.stop()


class QueuePipeline(DetectStorePipeline):
    """Detect as a local crawl does, then hand the scans to Redis (once per run and domain)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """As the local pipeline; errors name the Redis URL instead of a database."""
        pipe = super().from_crawler(crawler)
        pipe.db_path = redact(crawler.settings.get("REDIS_URL") or "")
        return pipe

    def _spider(self) -> QueueSpider:
        spider = self.crawler.spider
        assert isinstance(spider, QueueSpider)
        return spider

    async def _open_output(self, library: Any) -> None:
        spider = self._spider()
        assert spider.link is not None
        spider.link.start()
        names = list(library.signatures)
        await maybe_deferred_to_future(spider.queue_call(lambda q: q.publish_library(library.version, names)))

    async def _scan(self, item: SiteItem) -> ScanResult:
        result = await super()._scan(item)
        return dataclasses.replace(result, run_id=item.scan.run_id)

    def _failed_scan(self, item: SiteItem, exc: BaseException) -> ScanResult:
        return dataclasses.replace(super()._failed_scan(item, exc), run_id=item.scan.run_id)

    def flush(self) -> None:
        """Hand the buffered scans to the Redis thread (never waits)."""
        spider = self._spider()
        if not self.buffer or spider.link is None:
            return
        batch, self.buffer = self.buffer, []
        if self.failure is not None:
            return
        self.writing += 1
        d = spider.queue_call(lambda q: q.complete(batch))
        d.addCallbacks(lambda n: self._sent(batch, n), self._write_failed)

    def _sent(self, batch: list[ScanResult], accepted: int) -> None:
        spider = self._spider()
        for scan in batch:
            if spider.leased.get(scan.domain) == scan.run_id:
                del spider.leased[scan.domain]
        spider.finished += len(batch)
        self.crawler.stats.inc_value("detector/results_accepted", accepted)
        self.crawler.stats.inc_value("detector/results_duplicate", len(batch) - accepted)
        self._written(accepted)

    async def close_spider(self) -> None:
        """Send what is left, give unfinished domains back to the queue, stop the engines."""
        if self.ticker.running:
            self.ticker.stop()
        spider = self._spider()
        spider.stop_beating()
        try:
            if self.render is not None:
                await self.render.close()  # the renders still queued end as scans too
            if spider.link is not None:
                self.flush()
                # Tasks run in order: what the flush completes is no longer ours to release.
                left = [(run, domain) for domain, run in spider.leased.items()
                        if domain not in {s.domain for s in self.buffer}]
                released = spider.queue_call(lambda q: q.release(spider.worker, left))
                released.addCallback(lambda n: self.crawler.stats.set_value("detector/released", n))
                released.addErrback(lambda f: None)  # unreachable Redis: the leases expire instead
                spider.sites.clear()
                await maybe_deferred_to_future(spider.link.close())
        finally:
            if self.pool is not None:
                await self.pool.stop()


def run_worker(
    options: CrawlOptions,
    url: str,
    *,
    prefix: str,
    lease: float = LEASE_SECONDS,
    drain: bool = False,
    patience: float = PATIENCE_SECONDS,
    worker_id: str = "",
) -> CrawlReport:
    """Crawl domains from the runs in Redis at ``url`` until stopped (``drain``: until idle).

    Runs the Twisted reactor: once per process.
    """
    extra = {
        **options.extra,
        "REDIS_URL": url,
        "REDIS_PARAMS": dict(REDIS_PARAMS),
        "DETECTOR_REDIS_PREFIX": prefix,
        "DETECTOR_LEASE_SECONDS": lease,
        "DETECTOR_DRAIN": drain,
        "DETECTOR_REDIS_PATIENCE": patience,
        "DETECTOR_WORKER_ID": worker_id,
        "ITEM_PIPELINES": {"detector.crawl.queued.QueuePipeline": 300},
    }
    return run_crawl(dataclasses.replace(options, inputs=(), extra=extra), QueueSpider)
