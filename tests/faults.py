"""A local fault server: a proxy on 127.0.0.1 whose virtual hosts misbehave on purpose.

Each host has a :class:`Fault`: how its TLS answers a CONNECT (ok, broken, self-signed, refused)
and a handler that writes whatever raw bytes it likes on the connection (a reset mid-body,
headers that never come, a gzip bomb, 10,000 ``Set-Cookie`` lines...).  Every request is noted
in ``log`` before it is answered, so tests can count what reached the server (the SSRF tests
count that nothing asked for a private address).  ``robots.txt`` is a quick 404 unless the
fault's handler takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from detector.demo.vhosts import ServerThread, read_request_head

Writer = asyncio.StreamWriter


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the fault server read it."""

    method: str
    scheme: str
    host: str
    path: str
    headers: Mapping[str, str]


Handler = Callable[[Request, asyncio.StreamReader, Writer], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fault:
    """A virtual host: its TLS behaviour and the handler of its requests."""

    handler: Handler
    tls: str = "ok"  # "ok", "broken" (garbage instead of a handshake), "self-signed", "refused"
    http: bool = True  # answers plain http (False: the proxy says connection_refused)
    robots: bool = False  # the handler answers /robots.txt too


def response(status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = (),
             ctype: str = "text/html; charset=utf-8") -> bytes:
    """A complete HTTP/1.1 response (Content-Length set, connection kept)."""
    head = [f"HTTP/1.1 {status} X"]
    if ctype:
        head.append(f"Content-Type: {ctype}")
    head += [f"{k}: {v}" for k, v in headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def static(data: bytes) -> Handler:
    """A handler that writes the same bytes to every request."""
    async def handle(request: Request, reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.write(data)
        await writer.drain()
    return handle


@dataclass
class FaultServer:
    """The server; ``start()`` runs it on a daemon thread; ``url`` is for ``--proxy``."""

    faults: Mapping[str, Fault]
    tls: ssl.SSLContext | None = None
    self_signed: ssl.SSLContext | None = None
    log: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    host: str = "127.0.0.1"
    _serving: ServerThread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def requests(self, host: str) -> list[Request]:
        """The requests noted for a host (any scheme, CONNECT included)."""
        with self._lock:
            return [r for r in self.log if r.host == host]

    def start(self) -> FaultServer:
        """Serve on a daemon thread; returns once the port is bound."""
        self._serving = ServerThread(self._handle, self.host, self.port, "fault-server", limit=1 << 20)
        self.port = self._serving.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._serving is not None:
            self._serving.stop()

    def _note(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        with self._lock:
            self.connections += 1
        try:
            await self._serve(reader, writer)
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, asyncio.TimeoutError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        tunnel = ""
        while True:
            head = await read_request_head(reader)
            if head is None:
                return
            method, target, headers = head
            if method == "CONNECT":
                host = target.rpartition(":")[0].strip("[]").lower()
                self._note(Request(method, "https", host, "", headers))
                fault = self.faults.get(host)
                if fault is None or fault.tls == "refused":
                    error, reason = ("dns_error", "DNS lookup failed") if fault is None else (
                        "connection_refused", "Connection refused")
                    writer.write(f"HTTP/1.1 502 {reason}\r\nProxy-Status: faults; error={error}\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                if fault.tls == "broken":
                    await reader.read(1)
                    writer.write(b"this is not TLS\r\n" * 4)
                    await writer.drain()
                    await asyncio.wait_for(reader.read(), 10)
                    return
                context = self.self_signed if fault.tls == "self-signed" else self.tls
                assert context is not None
                await writer.start_tls(context)
                tunnel = host
                continue
            if target.startswith(("http://", "https://")):
                split = urlsplit(target)
                host = (split.hostname or "").lower()
                path = (split.path or "/") + (f"?{split.query}" if split.query else "")
                scheme = "http"
            else:
                host = tunnel or headers.get("host", "").rsplit(":", 1)[0].lower()
                path, scheme = target, "https" if tunnel else "http"
            request = Request(method, scheme, host, path, headers)
            self._note(request)
            fault = self.faults.get(host)
            if fault is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nProxy-Status: faults; error=dns_error\r\n"
                             b"Content-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            if scheme == "http" and not fault.http:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nProxy-Status: faults; error=connection_refused\r\n"
                             b"Content-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            if path == "/robots.txt" and not fault.robots:
                writer.write(response(404, b"", ctype="text/plain"))
                await writer.drain()
                continue
            await fault.handler(request, reader, writer)
            if writer.is_closing():
                return
