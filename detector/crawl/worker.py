"""Detection beside the reactor: engine processes that turn a site's pages into a verdict.

No Scrapy here.  ``python -m detector.crawl.worker [--mode MODE] [DIR...]`` loads the engine once, then
reads tasks from stdin and writes results to stdout, each a length-prefixed pickle frame:
lists of ``(task id, pages, network facts)`` in, lists of ``(task id, ok, detections or error text)`` out.  The crawler talks
to these processes through its own event loop (no threads in the crawler process), so the
reactor keeps one core and the engines use the others.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

from detector.crawl.items import FetchedPage, RenderedPage
from detector.engine.match import Engine
from detector.engine.network import NetworkFacts
from detector.engine.page import Page
from detector.engine.verdict import SiteDetection

_ENGINE: Engine | None = None
HEADER = struct.Struct(">I")
READY = -1  # task id of the frame a worker sends once its engine is loaded
SWITCHED_OFF = -2  # task id of a reply listing patterns switched off (over their time budget)


def load_engine(directories: Sequence[str] | None, mode: str = "detector") -> Engine:
    """Load the engine once per process (``None`` = the bundled library) in ``mode``
    ("detector", the default, or "wappalyzer": see ``Engine(mode=...)``)."""
    global _ENGINE
    if _ENGINE is None or _ENGINE.mode != mode:
        _ENGINE = Engine.from_directories(list(directories) if directories else None, mode=mode)
    return _ENGINE


def page_from_fetched(page: FetchedPage | RenderedPage) -> Page:
    """The engine's Page for a fetched page (same shape as ``detect --cases`` builds) or a rendered one."""
    if isinstance(page, RenderedPage):
        return Page(url=page.url, html=page.html, js=page.js, xhr=page.xhr, dom_properties=page.dom_properties,
                    tier="rendered")
    return Page.from_http(page.url, status=page.status, headers=page.headers, body=page.body)


def detect_site(
    pages: Sequence[FetchedPage | RenderedPage], engine: Engine | None = None, network: NetworkFacts | None = None
) -> list[SiteDetection]:
    """Resolve a site's pages and DNS/TLS facts at once into one verdict (see detector.engine.site)."""
    eng = engine if engine is not None else _ENGINE
    if eng is None:
        raise RuntimeError("detect_site called in a process where load_engine() did not run")
    return eng.detect_site((page_from_fetched(p) for p in pages), network)


def switched_off_messages(origins: Sequence[str], pages: Sequence[FetchedPage]) -> list[str]:
    """One line per pattern switched off, naming its file and the site where it happened."""
    from detector.engine.budget import BUDGET

    where = pages[0].url if pages else "a page"
    return [f"{origin}: switched off for the rest of the run: it needed more than {BUDGET.seconds:g} s "
            f"of CPU time in Python regex on one page ({where}); rewrite it without lookaround or back references "
            "so RE2 can run it" for origin in origins]


def encode_frame(obj: Any) -> bytes:
    """A length-prefixed pickle."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve(directories: Sequence[str] | None, stdin: BinaryIO, stdout: BinaryIO, mode: str = "detector") -> None:
    """The worker loop: load the engine, say ready, answer batches of tasks until stdin closes.

    A frame in is a list of ``(task id, pages, network facts or None)``; the frame out is the
    list of their results.
    """
    engine = load_engine(directories, mode)
    stdout.write(encode_frame([(READY, True, engine.library.version)]))
    stdout.flush()
    while True:
        head = _read_exact(stdin, HEADER.size)
        if head is None:
            return
        body = _read_exact(stdin, HEADER.unpack(head)[0])
        if body is None:
            return
        replies: list[tuple[int, bool, Any]] = []
        for task_id, pages, network in pickle.loads(body):
            try:
                replies.append((task_id, True, detect_site(pages, engine, network)))
            except Exception as exc:  # noqa: BLE001 - reported back as data, the worker lives on
                replies.append((task_id, False, f"{type(exc).__name__}: {exc}"))
            off = engine.switched_off()
            if off:
                replies.append((SWITCHED_OFF, True, switched_off_messages(off, pages)))
        stdout.write(encode_frame(replies))
        stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: ``[--mode MODE] [DIR...]``, signature directories (none = the bundled library)."""
    args = list(sys.argv[1:] if argv is None else argv)
    mode = "detector"
    if args[:1] == ["--mode"] and len(args) >= 2:
        mode, args = args[1], args[2:]
    # Detection is batch work; the crawler's event loop is what must never wait for a core.
    with contextlib.suppress(OSError):
        os.nice(5)
    # Frames own the real stdout; anything else printed goes to stderr.
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(args or None, sys.stdin.buffer, frames, mode)


if __name__ == "__main__":
    main()
