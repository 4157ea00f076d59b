"""The distributed run's two ends beside the workers: enqueue the domains, ingest the results.

``enqueue`` puts a run's domains into Redis (``crawl --redis``, ``refresh --redis``);
``ingest`` is the one writer: it reads the runs' result streams and stores each scan through
the :class:`~detector.store.store.Store`, under the database's lock, with the same history
rules as a local crawl.  A result is acknowledged in Redis only after its transaction
commits, and a scan whose (run, domain) is stored already is skipped, so a writer killed at
any moment and started again stores every result exactly once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.crawl.distributed import DistributedError, Entry, RunQueue, decode_scan
from detector.engine.signatures import load_signatures
from detector.store.history import DEFAULT_MISS_THRESHOLD
from detector.store.scans import ScanResult
from detector.store.store import Store
from detector.timestamps import utc_now

#: Seconds between the writer's reaps of expired leases (so runs move on when all workers died).
REAP_EVERY = 5.0


def enqueue(queue: RunQueue, run_id: str, command: str, domains: Iterable[str],
            options: Mapping[str, Any]) -> int:
    """Create run ``run_id`` in Redis, queue its domains, seal it; return how many were queued.

    ``domains`` must be clean and unique (as :func:`detector.inputs.read_domains` yields them).
    """
    queue.create_run(run_id, command, options)
    try:
        n = queue.push(run_id, domains)
    except BaseException as exc:
        # Interrupted part-way (Ctrl-C, an unreadable input line, Redis gone): seal what is
        # queued, so the run finishes instead of keeping workers and the writer waiting.
        with contextlib.suppress(Exception):
            queue.seal(run_id, cut_short=f"queueing was interrupted ({type(exc).__name__})")
        raise
    queue.seal(run_id)
    return n


@dataclass(slots=True)
class IngestReport:
    """What a writer did: runs finished (with their summaries), scans written and skipped."""

    finished: list[str] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stopped: bool = False
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Scans written per second of ingesting."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


def abandoned_scan(entry: Entry) -> ScanResult:
    """The error scan of a domain whose leases all expired (its workers died or stalled)."""
    now = utc_now()
    return ScanResult(
        domain=entry.domain, run_id=entry.run_id, started_at=now, finished_at=now, status="error",
        error_kind="other",
        error_message=f"abandoned: {entry.data} worker(s) took this domain and none finished it "
                      "(killed or stalled); the next run tries it again",
    )


class Writer:
    """The one writer of a database: runs in Redis -> scans in SQLite."""

    def __init__(self, queue: RunQueue, store: Store, *, command: str = "ingest",
                 signatures: Sequence[str] = ()) -> None:
        self.queue = queue
        self.store = store
        self.command = command
        library = load_signatures(list(signatures) or None)
        store.mirror_library(library)
        self.own_known = frozenset(library.signatures)
        self.known: dict[str, frozenset[str] | None] = {}
        self.started: dict[str, dict[str, Any]] = {}  # run -> its Redis hash, once recorded in runs
        self.report = IngestReport()

    def start_run(self, run_id: str) -> None:
        """Record (or resume) a run in the database's ``runs`` table."""
        info = self.queue.run_info(run_id)
        if not info:
            raise DistributedError(f"{self.queue.url}: no run {run_id} in Redis (prefix {self.queue.prefix}). "
                                   "See the open runs with: detector status --redis URL")
        options = info.get("options") or {}
        planned = int(info["enqueued"]) if info.get("state") == "open" else None
        self.store.start_run(run_id, str(info.get("command") or "crawl"), planned=planned,
                             options=options, resume=True)
        self.started[run_id] = info

    def write(self, entries: Sequence[Entry]) -> None:
        """Store a batch of results in one transaction per run and library, then acknowledge them."""
        groups: dict[tuple[str, str], list[ScanResult]] = {}
        for e in entries:
            scan = decode_scan(e.data) if e.kind == "scan" else abandoned_scan(e)
            groups.setdefault((e.run_id, scan.signatures_version), []).append(scan)
        for (run_id, version), scans in groups.items():
            options = self.started.get(run_id, {}).get("options") or {}
            threshold = int(options.get("miss_threshold") or DEFAULT_MISS_THRESHOLD)
            n = self.store.record_scans(scans, miss_threshold=threshold, known=self._known(version),
                                        once_per_run=True)
            self.report.written += n
            self.report.skipped += len(scans) - n
        self.queue.acknowledge(entries)

    def _known(self, version: str) -> frozenset[str] | None:
        if not version:
            return self.own_known
        if version not in self.known:
            self.known[version] = self.queue.library(version) or self.own_known
        return self.known[version]

    def finish_finished(self) -> None:
        """Close the runs whose every domain is stored: in the database and in Redis."""
        from detector.store.freshness import change_counts
        from detector.store.scans import run_summary

        for run_id in list(self.started):
            if self.queue.complete_run(run_id):
                self.store.finish_run(run_id, "done")
                self.queue.close_run(run_id)
                summary = run_summary(self.store.db, run_id)
                summary["changes"] = change_counts(self.store.db, run_id)
                self.report.summaries[run_id] = summary
                self.report.finished.append(run_id)
                del self.started[run_id]


def ingest(
    queue: RunQueue,
    store: Store,
    *,
    runs: Sequence[str] | None = None,
    follow: bool = False,
    signatures: Sequence[str] = (),
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[[IngestReport, list[dict[str, Any]]], None] | None = None,
    batch: int = 500,
) -> IngestReport:
    """Write the results of the open runs (``runs``: only these) into ``store`` until they finish.

    ``follow``: keep waiting for new runs after that.  ``stop`` is asked between batches (a
    signal handler's flag); runs left unfinished are marked ``interrupted`` in the database
    and resume at the next ingest.  ``store`` must hold the database's lock.
    """
    writer = Writer(queue, store, signatures=signatures)
    started = time.monotonic()  # from the first read: loading the library is not writing
    wanted = set(runs) if runs is not None else None
    for run_id in runs or ():
        writer.start_run(run_id)  # a run Redis does not know is an error now, not a wait forever
    last_reap = 0.0
    replayed = False
    try:
        while not stop():
            open_runs = [r for r in queue.open_runs() if wanted is None or r in wanted]
            for run_id in open_runs:
                if run_id not in writer.started:
                    writer.start_run(run_id)
            if not replayed:
                # What a killed writer read and did not acknowledge: skipped where it committed.
                while entries := queue.read(list(writer.started), pending=True, count=batch):
                    writer.write(entries)
                replayed = True
            entries = queue.read(list(writer.started), pending=False, count=batch, block_ms=500)
            if entries:
                writer.write(entries)
            if time.monotonic() - last_reap > REAP_EVERY:
                queue.reap()
                last_reap = time.monotonic()
            writer.finish_finished()
            writer.report.seconds = time.monotonic() - started
            if progress is not None:
                progress(writer.report, [queue.counts(r) for r in writer.started])
            if not writer.started and not follow:
                break
            if not writer.started:
                time.sleep(0.5)
        else:
            writer.report.stopped = True
    finally:
        for run_id in writer.started:
            store.finish_run(run_id, "interrupted")
    writer.report.seconds = time.monotonic() - started
    return writer.report
