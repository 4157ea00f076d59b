"""The fault matrix: one virtual host per hostile behaviour, and what the crawl must record.

``CASES`` is the table: the fault server (tests/faults.py) serves each case's host, the test
(tests/test_fault_matrix.py) crawls each host on its own and checks the scan against the
expectation, and docs/fault-matrix.md is generated from the same table
(``python3 -m tests.fault_cases > docs/fault-matrix.md``; a test checks it is current).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults import Fault, FaultServer, Handler, Request, Writer, response, static
from tests.servers import ROOT, rows, tls_context

PAGE = (b'<!DOCTYPE html><html><head><meta name="generator" content="PressCMS 6.1.2"><title>t</title></head>'
        b"<body><p>hello</p></body></html>")
DETECTED = "PressCMS 6.1.2"
#: Crawl options of every case (bounds below are in these terms).
TIMEOUT = 2.0
MAX_SIZE = 8 * 1024 * 1024
OPTIONS = ["--timeout", str(TIMEOUT), "--retries", "0", "--pages", "0", "--max-size", "8MB", "--workers", "0"]


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the matrix: the host, what it does, and what the scan must say."""

    host: str
    fault: str  # what the server does, for the docs
    serve: Fault
    status: str  # scan status: ok / error
    kind: str | None = None  # error_kind, when an error
    detects: str | None = None  # "Technology version" that must be detected, when ok
    message: str = ""  # text error_message must contain
    seconds: float = 10.0  # bound on the case: from its scan's start to its detection's end
    megabytes: int = 300  # bound on the crawl process's peak RSS when the case is done


# ---------------------------------------------------------------------------- handlers


def _reset(writer: Writer) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    writer.transport.abort()


def reset_mid_body() -> Handler:
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n" + PAGE[:60])
        await writer.drain()
        await asyncio.sleep(0.2)
        _reset(writer)
    return handle


def close_after_headers() -> Handler:
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n")
        await writer.drain()
        writer.close()
    return handle


def silent() -> Handler:
    """Read the request, never answer (until the client gives up)."""
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        await asyncio.wait_for(reader.read(), TIMEOUT * 5)
        writer.close()
    return handle


def drip() -> Handler:
    """Headers at once, then one byte of body every half second: slower than the timeout."""
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n")
        for byte in PAGE[: int(TIMEOUT * 6)]:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.5)
        writer.close()
    return handle


def huge_body(size: int) -> Handler:
    """``size`` bytes of HTML, written in chunks (never held in memory), as long as the client reads."""
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b"<p>" + b"x" * 65_532 + b"</p>"[:1]
        sent = 0
        while sent < size:
            writer.write(chunk[: size - sent])
            sent += len(chunk)
            await writer.drain()
        writer.close()
    return handle


def redirects(chain: dict[str, str], final: bytes = PAGE) -> Handler:
    """Redirect by path (``chain``: path -> Location); other paths get the page."""
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        target = chain.get(request.path)
        if target is None:
            writer.write(response(200, final))
        else:
            writer.write(response(302, b"", (("Location", target),), ctype=""))
        await writer.drain()
    return handle


def _bomb(encoding: str) -> bytes:
    """256 MB of zeros, compressed (a few hundred KB), built without holding the 256 MB."""
    block = b"\0" * (1 << 20)
    if encoding == "gzip":
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
            for _ in range(256):
                gz.write(block)
        return out.getvalue()
    import brotli

    compressor = brotli.Compressor(quality=4)
    data = b"".join(compressor.process(block) for _ in range(256))
    return bytes(data + compressor.finish())


_BOMBS: dict[str, bytes] = {}


def bomb(encoding: str) -> Handler:
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(response(200, _BOMBS[encoding], (("Content-Encoding", encoding),)))
        await writer.drain()
    return handle


def many_headers(name: str, count: int) -> Handler:
    head = "".join(f"{name}: {'v' if name != 'Set-Cookie' else f'c{n}=v{n}; Path=/'}{n}\r\n"
                   for n in range(count)).encode()
    data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n" + head
            + f"Content-Length: {len(PAGE)}\r\n\r\n".encode() + PAGE)
    return static(data)


def page_with(body: bytes, ctype: str = "text/html; charset=utf-8") -> Handler:
    return static(response(200, body, ctype=ctype))


def _html(inner: bytes) -> bytes:
    return PAGE.replace(b"<p>hello</p>", inner)


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000
NO_HTTPS = "refused"

CASES: tuple[Case, ...] = (
    # ---- the connection
    Case("reset-mid-body.test", "sends headers and part of the body, then resets the connection (RST)",
         Fault(reset_mid_body(), tls=NO_HTTPS), "error", "connection_lost", message="Connection"),
    Case("headers-never.test", "accepts the request and never answers",
         Fault(silent(), tls=NO_HTTPS), "error", "timeout", seconds=15),
    Case("drip.test", "sends the headers, then one byte of body every 0.5 s (slower than --timeout)",
         Fault(drip(), tls=NO_HTTPS), "error", "timeout", seconds=15),
    Case("closes-after-headers.test", "sends the headers (Content-Length: 5000) and closes",
         Fault(close_after_headers(), tls=NO_HTTPS), "error", "connection_lost"),
    Case("garbage.test", "answers with bytes that are not HTTP",
         Fault(static(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\x00\xff" * 64), tls=NO_HTTPS), "error", "bad_response"),
    # ---- TLS
    Case("tls-broken.test", "answers the TLS handshake with plain text; nothing on port 80",
         Fault(page_with(PAGE), tls="broken", http=False), "error", "tls"),
    Case("self-signed.test", "a self-signed certificate for another name (detection does not verify certificates)",
         Fault(page_with(PAGE), tls="self-signed", http=False), "ok", detects=DETECTED),
    # ---- redirects
    Case("redirect-loop.test", "/ -> /a -> /b -> /",
         Fault(redirects({"/": "/a", "/a": "/b", "/b": "/"}), tls=NO_HTTPS), "error", "redirect_loop"),
    Case("redirect-30.test", "a chain of 30 redirects (the limit is 10)",
         Fault(redirects({("/" if n == 0 else f"/r{n}"): f"/r{n + 1}" for n in range(30)}), tls=NO_HTTPS),
         "error", "redirect_loop"),
    Case("redirect-offsite.test", "redirects to another registered domain",
         Fault(redirects({"/": "http://elsewhere-target.test/"}), tls=NO_HTTPS), "error", "offsite",
         message="elsewhere-target.test"),
    Case("redirect-file.test", "redirects to file:///etc/passwd",
         Fault(redirects({"/": "file:///etc/passwd"}), tls=NO_HTTPS), "error", "bad_redirect",
         message="to 'file:///etc/passwd': not an http(s) URL, not followed"),
    Case("redirect-javascript.test", "redirects to javascript:alert(1)",
         Fault(redirects({"/": "javascript:alert(1)"}), tls=NO_HTTPS), "error", "bad_redirect",
         message="javascript:alert(1)"),
    Case("redirect-data.test", "redirects to a data: URL holding HTML",
         Fault(redirects({"/": "data:text/html,<meta name=generator content='PressCMS 9'>"}), tls=NO_HTTPS),
         "error", "bad_redirect", message="not an http(s) URL, not followed"),
    Case("redirect-private.test", "redirects to http://10.0.0.1/admin",
         Fault(redirects({"/": "http://10.0.0.1/admin"}), tls=NO_HTTPS), "error", "blocked_address",
         message="10.0.0.1 is a private network address"),
    Case("redirect-metadata.test", "redirects to the cloud metadata service",
         Fault(redirects({"/": "http://169.254.169.254/latest/meta-data/"}), tls=NO_HTTPS), "error",
         "blocked_address", message="169.254.169.254 is a metadata service address"),
    # ---- status codes
    Case("status-404.test", "404 Not Found", Fault(static(response(404, PAGE)), tls=NO_HTTPS), "error", "http_4xx"),
    Case("status-503.test", "503 Service Unavailable", Fault(static(response(503, PAGE)), tls=NO_HTTPS), "error",
         "http_5xx"),
    Case("status-429.test", "429 Too Many Requests with Retry-After: 3600 (not waited for)",
         Fault(static(response(429, PAGE, (("Retry-After", "3600"),))), tls=NO_HTTPS), "error", "http_4xx"),
    # ---- size and compression
    Case("body-50mb.test", "a 50 MB body (the limit is --max-size)", Fault(huge_body(50 << 20), tls=NO_HTTPS),
         "error", "too_large"),
    Case("gzip-bomb.test", "gzip that inflates to 256 MB", Fault(bomb("gzip"), tls=NO_HTTPS), "error",
         "too_large"),
    Case("brotli-bomb.test", "brotli that inflates to 256 MB", Fault(bomb("br"), tls=NO_HTTPS), "error",
         "too_large"),
    # ---- content types and charsets
    Case("binary.test", "a PNG image as the homepage", Fault(page_with(PNG, "image/png"), tls=NO_HTTPS), "error",
         "not_html"),
    Case("octet-stream.test", "HTML served as application/octet-stream (a browser downloads it)",
         Fault(page_with(PAGE, "application/octet-stream"), tls=NO_HTTPS), "error", "not_html"),
    Case("wrong-charset.test", "UTF-8 text declared as ISO-8859-1",
         Fault(page_with(_html("<p>caf\u00e9 \u2603</p>".encode()), "text/html; charset=iso-8859-1"), tls=NO_HTTPS),
         "ok", detects=DETECTED),
    Case("invalid-utf8.test", "declared UTF-8, with invalid byte sequences",
         Fault(page_with(_html(b"<p>\xff\xfe\xc3\x28 \xed\xa0\x80</p>")), tls=NO_HTTPS), "ok", detects=DETECTED),
    Case("bogus-charset.test", "charset=base64 (a codec Python knows that is no text encoding)",
         Fault(page_with(PAGE, "text/html; charset=base64"), tls=NO_HTTPS), "ok", detects=DETECTED),
    Case("unknown-charset.test", "charset=x-no-such-charset",
         Fault(page_with(PAGE, "text/html; charset=x-no-such-charset"), tls=NO_HTTPS), "ok", detects=DETECTED),
    # ---- headers
    Case("headers-10k.test", "10,000 header lines", Fault(many_headers("X-Filler", 10_000), tls=NO_HTTPS),
         "ok", detects=DETECTED),
    Case("cookies-10k.test", "10,000 Set-Cookie headers", Fault(many_headers("Set-Cookie", 10_000), tls=NO_HTTPS),
         "ok", detects=DETECTED),
    # ---- bodies that are hard to parse
    Case("nested-100k.test", "100,000 nested elements",
         Fault(page_with(_html(b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000)), tls=NO_HTTPS),
         "ok", detects=DETECTED),
    Case("scripts-100k.test", "100,000 script tags",
         Fault(page_with(_html(b"".join(b'<script src="/s%d.js"></script>' % n for n in range(100_000)))),
               tls=NO_HTTPS), "ok", detects=DETECTED),
    Case("inline-5mb.test", "a 5 MB inline script on one line",
         Fault(page_with(_html(b"<script>var x='" + b"ab" * (5 << 19) + b"';</script>")), tls=NO_HTTPS),
         "ok", detects=DETECTED),
    Case("empty-200.test", "200 OK, text/html, empty body", Fault(page_with(b""), tls=NO_HTTPS), "ok"),
)


def self_signed_context() -> ssl.SSLContext:
    """A server context whose certificate is self-signed (a throwaway CA's own certificate)."""
    import tempfile

    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
        f.write(ca.private_key_pem.bytes() + ca.cert_pem.bytes())
    ctx.load_cert_chain(f.name)
    return ctx


def expectation(case: Case) -> str:
    """What the scan must say, for the docs."""
    if case.status == "ok":
        return "ok" + (f", detects {case.detects}" if case.detects else ", no detection")
    return f"`{case.kind}`" + (f' ("{case.message}" in the message)' if case.message else "")


def matrix_markdown() -> str:
    """docs/fault-matrix.md, from CASES."""
    lines = [
        "# Fault matrix",
        "",
        "How `detector crawl` records a hostile or broken site. Each row is a virtual host of the",
        "local fault server (`tests/faults.py`); `tests/test_fault_matrix.py` crawls it on its own",
        f"(through the server as `--proxy`, with `{' '.join(OPTIONS)}`) and checks the scan, the time",
        "and the peak memory of the crawl process. Generated from `tests/fault_cases.py` by",
        "`python3 -m tests.fault_cases > docs/fault-matrix.md`; a test fails when it is out of date.",
        "",
        "Unless a row says otherwise, https is refused (the proxy answers the CONNECT with",
        "`connection_refused`) and the fault happens on the http attempt.",
        "",
        "| host | the server | the scan records | bound |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        lines.append(f"| `{c.host}` | {c.fault} | {expectation(c)} | {c.seconds:g} s, {c.megabytes} MB |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(matrix_markdown(), end="")


# ---------------------------------------------------------------------------- running the matrix


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the crawl recorded for one case, how long it took and the memory after it."""

    scan: dict[str, Any]
    detections: list[str]
    seconds: float  # from the scan's start to the end of its detection
    peak_mb: float  # the crawl process's peak RSS when the case was done (cases run one by one)
    grew_mb: float  # how much that peak grew during the case


@dataclass(frozen=True, slots=True)
class Matrix:
    """The matrix's crawl: each case's outcome, and the whole run's time and exit status."""

    outcomes: dict[str, Outcome]
    seconds: float
    code: int
    err: str


def start_server() -> FaultServer:
    """The fault server with every case's host (and the target of the off-site redirect)."""
    faults = {c.host: c.serve for c in CASES}
    faults["elsewhere-target.test"] = Fault(page_with(PAGE), tls=NO_HTTPS)
    for encoding in ("gzip", "br"):
        _BOMBS[encoding] = _bomb(encoding)  # made before the crawl, not while it waits
    return FaultServer(faults, tls=tls_context(sorted(faults)), self_signed=self_signed_context()).start()


CRAWL = """
import json, sys
from detector.crawl.runner import CrawlOptions, run_crawl
opts = json.loads(sys.argv[1])
opts["inputs"] = tuple(opts["inputs"])
run_crawl(CrawlOptions(**opts))
"""


def run_matrix(proxy: str, tmp: Path) -> Matrix:
    """Crawl every case in one process, one site at a time, so memory can be told apart."""
    tmp.mkdir(parents=True, exist_ok=True)
    listing, db, measures = tmp / "domains.txt", tmp / "matrix.db", tmp / "measures.jsonl"
    listing.write_text("".join(c.host + "\n" for c in CASES), encoding="utf-8")
    opts = {
        "inputs": [str(listing)], "db": str(db), "proxy": proxy, "workers": 0, "retries": 0, "pages": 0,
        "timeout": TIMEOUT, "max_size": MAX_SIZE, "concurrency": 1, "per_site": 1,
        "signatures": [str(ROOT / "tests" / "signatures")],
        "extra": {"ITEM_PIPELINES": {"detector.crawl.pipelines.DetectStorePipeline": 300,
                                     "tests.dump_pipeline.MeasurePipeline": 400},
                  "TEST_MEASURE": str(measures)},
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CRAWL, json.dumps(opts)], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=sum(c.seconds for c in CASES) + 60, check=False)
    seconds = time.monotonic() - started
    scans = {s["domain"]: s for s in rows(db, "select * from scans")} if db.exists() else {}
    found: dict[str, list[str]] = {}
    if db.exists():
        for d in rows(db, "select domain, technology, version from detections order by technology"):
            found.setdefault(d["domain"], []).append(f"{d['technology']} {d['version'] or ''}".strip())
    marks = [json.loads(line) for line in measures.read_text().splitlines()] if measures.exists() else []
    outcomes: dict[str, Outcome] = {}
    before = 0
    for mark in marks:
        scan = scans.get(mark["domain"], {})
        began = _epoch(scan["started_at"]) if scan else mark["at"]
        outcomes[mark["domain"]] = Outcome(scan, found.get(mark["domain"], []), mark["at"] - began,
                                           mark["peak_kb"] / 1024, max(0, mark["peak_kb"] - before) / 1024)
        before = max(before, mark["peak_kb"])
    return Matrix(outcomes, seconds, proc.returncode, proc.stderr)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
