"""The crawl's one SQLite writer: a thread that owns the connection, fed batch by batch.

SQLite waits for locks (another process writing, a reader checkpointing) for up to its busy
timeout.  Waiting on the reactor thread would stop every download and every engine frame, so
the reactor only hands over work and gets a Deferred back; the thread opens the database, runs
the tasks in order and reports each result through ``reactor.callFromThread``.  The reactor
side bounds how many batches wait (see :class:`~detector.crawl.pipelines.DetectStorePipeline`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet import defer

from detector.store.store import Store

T = TypeVar("T")


class Closeable(Protocol):
    """What an :class:`OwnerThread` owns: something it opens once and closes at the end."""

    def close(self) -> None:
        """Release it."""


R = TypeVar("R", bound=Closeable)


class OwnerThread(Generic[R]):
    """A thread owning one blocking resource; :meth:`call` runs a task on it, in order.

    The resource is opened on the thread before the first task; the reactor gets each task's
    result as a Deferred.  :class:`ScanWriter` owns a Store; the distributed worker owns its
    Redis queue this way (a Redis outage then stalls its results, never the downloads).
    """

    def __init__(self, opener: Callable[[], R], name: str) -> None:
        self._opener = opener
        self._tasks: queue.SimpleQueue[tuple[Callable[[R], Any], defer.Deferred[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ended: defer.Deferred[None] = defer.Deferred()
        self._store: R | None = None

    def start(self) -> None:
        """Start the thread; it opens the resource before the first task."""
        self._thread.start()

    def call(self, task: Callable[[R], T]) -> defer.Deferred[T]:
        """Run ``task(store)`` on the writer thread; the Deferred fires on the reactor with its result."""
        d: defer.Deferred[T] = defer.Deferred()
        self._tasks.put((task, d))
        return d

    def close(self) -> defer.Deferred[None]:
        """Let the thread finish the tasks already given, close the database and end."""
        if self._thread.is_alive():
            self._tasks.put(None)
            return self._ended
        return defer.succeed(None)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        from twisted.internet import reactor  # the running reactor; importing it here installs none

        call_from_thread: Any = reactor.callFromThread
        try:
            while True:
                job = self._tasks.get()
                if job is None:
                    return
                task, d = job
                try:
                    if self._store is None:
                        self._store = self._opener()
                    result = task(self._store)
                except BaseException as exc:  # noqa: BLE001 - handed to the reactor as the task's failure
                    call_from_thread(d.errback, exc)
                else:
                    call_from_thread(d.callback, result)
        finally:
            if self._store is not None:
                self._store.close()
            call_from_thread(self._ended.callback, None)


class ScanWriter(OwnerThread[Store]):
    """A thread owning the crawl's :class:`~detector.store.store.Store`; :meth:`call` runs a task on it."""

    def __init__(self, db_path: str | Path) -> None:
        super().__init__(lambda: Store.open(db_path), "detector-sqlite-writer")
        self.db_path = db_path
