"""Engine worker processes driven by the Twisted reactor (no threads in the crawler).

Each worker is ``python -m detector.crawl.worker``; tasks and results are length-prefixed
pickle frames over its stdin/stdout, read and written by the reactor like any socket.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from detector.crawl.items import FetchedPage, RenderedPage
from detector.crawl.worker import HEADER, READY, SWITCHED_OFF, encode_frame
from detector.engine.network import NetworkFacts
from detector.engine.verdict import SiteDetection
from detector.errors import DetectorError

#: How long a task may wait for others to share its frame to a worker.
BATCH_SECONDS = 0.005


class EngineWorkerError(DetectorError):
    """An engine worker failed (could not start, died, or raised on a page)."""


class _WorkerProtocol(protocol.ProcessProtocol):
    """One worker process: frames out to stdin, frames in from stdout."""

    def __init__(self, pool: EnginePool) -> None:
        self.pool = pool
        self.buffer = b""
        self.pending: dict[int, defer.Deferred[list[SiteDetection]]] = {}
        self.ready: defer.Deferred[str] = defer.Deferred()
        self.stderr: list[bytes] = []
        self.alive = True
        self.outbox: list[tuple[int, list[FetchedPage | RenderedPage], NetworkFacts | None]] = []
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        """Split complete frames off the stream and resolve their tasks."""
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + size:
                break
            frame = self.buffer[HEADER.size : HEADER.size + size]
            self.buffer = self.buffer[HEADER.size + size :]
            for task_id, ok, value in pickle.loads(frame):
                if task_id == READY:
                    self.ready.callback(value)
                    continue
                if task_id == SWITCHED_OFF:
                    if self.pool.on_switched_off is not None:
                        self.pool.on_switched_off(value)
                    continue
                d = self.pending.pop(task_id)
                if ok:
                    d.callback(value)
                else:
                    d.errback(EngineWorkerError(f"engine worker failed on a site: {value}"))

    def errReceived(self, data: bytes) -> None:
        """Keep the last of what the worker wrote to stderr, for error messages."""
        self.stderr.append(data)
        del self.stderr[:-20]

    def processEnded(self, reason: Failure) -> None:
        """Fail whatever was still waiting on this worker."""
        self.alive = False
        tail = b"".join(self.stderr).decode("utf-8", "replace").strip().splitlines()[-3:]
        error = EngineWorkerError("engine worker stopped: " + (" | ".join(tail) or str(reason.value)))
        if not self.ready.called:
            self.ready.errback(error)
        pending, self.pending = self.pending, {}
        for d in pending.values():
            d.errback(error)
        self.ended.callback(None)


class EnginePool:
    """Engine processes beside the reactor; ``detect(pages)`` fires with the site verdict."""

    def __init__(self, workers: int, directories: Sequence[str] | None, mode: str = "detector") -> None:
        self.size = max(1, workers)
        self.directories = list(directories or [])
        self.mode = mode
        self.workers: list[_WorkerProtocol] = []
        self._next_id = 0
        self._flush_scheduled = False
        #: Called with the messages of patterns a worker switched off (over their time budget).
        self.on_switched_off: Callable[[list[str]], None] | None = None

    async def start(self) -> str:
        """Start the processes and wait until every engine is loaded; return the library version."""
        from twisted.internet import reactor  # imported late: importing it installs a reactor

        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        args = [sys.executable, "-m", "detector.crawl.worker", "--mode", self.mode, *self.directories]
        for _ in range(self.size):
            proto = _WorkerProtocol(self)
            spawn: Any = reactor.spawnProcess
            spawn(proto, sys.executable, args, env=env)
            self.workers.append(proto)
        try:
            versions = await maybe_deferred_to_future(
                defer.gatherResults([w.ready for w in self.workers], consumeErrors=True)
            )
        except defer.FirstError as exc:
            self.close()
            error: BaseException = exc.subFailure.value or EngineWorkerError(str(exc))
            raise error from None
        return str(versions[0])

    def detect(
        self, pages: Sequence[FetchedPage | RenderedPage], network: NetworkFacts | None = None
    ) -> defer.Deferred[list[SiteDetection]]:
        """Send a site's pages (and its DNS/TLS facts) to the least busy worker."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return defer.fail(EngineWorkerError("no engine worker is running"))
        worker = min(alive, key=lambda w: len(w.pending))
        self._next_id += 1
        d: defer.Deferred[list[SiteDetection]] = defer.Deferred()
        worker.pending[self._next_id] = d
        worker.outbox.append((self._next_id, list(pages), network))
        if not self._flush_scheduled:
            # Tasks that arrive within a few milliseconds travel in one frame: each pipe write
            # wakes a worker, and waking it per site costs more than the detection.
            from twisted.internet import reactor

            self._flush_scheduled = True
            call_later: Any = reactor.callLater
            call_later(BATCH_SECONDS, self._flush)
        return d

    def _flush(self) -> None:
        self._flush_scheduled = False
        for w in self.workers:
            if w.outbox and w.alive:
                transport: Any = w.transport
                transport.write(encode_frame(w.outbox))
            w.outbox = []

    def close(self) -> None:
        """Close the workers' stdin; they exit after their current task."""
        for w in self.workers:
            transport: Any = w.transport
            if w.alive and transport is not None:
                transport.closeStdin()

    async def stop(self) -> None:
        """Close the workers and wait until they have exited."""
        self.close()
        await maybe_deferred_to_future(defer.DeferredList([w.ended for w in self.workers]))

