"""A small HTTP proxy that *is* the web: it serves local example sites chosen by host name.

``detector demo``, the tests and the benchmark point the crawler at it with ``--proxy``, so
the spider sees real domain URLs while every byte stays on 127.0.0.1.  It speaks HTTP/1.1
with keep-alive, absolute-form proxy requests, and ``CONNECT`` (TLS with a given certificate;
without one, https is refused and the crawler falls back to http).  Unknown hosts get what a
real proxy sends: ``502`` with an RFC 9209 ``Proxy-Status: ...; error=dns_error`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROXY_NAME = "detector-vhosts"


@dataclass(frozen=True, slots=True)
class Route:
    """One response: status, headers, body, an optional delay before answering."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/html; charset=utf-8"),)
    body: bytes = b""
    delay: float = 0.0


@dataclass(slots=True)
class Site:
    """A host's routes and how it answers on https (CONNECT) and http."""

    host: str
    routes: dict[str, Route] = field(default_factory=dict)
    https: bool = True
    http: bool = True
    tls: str = "ok"  # "ok" or "broken" (handshake fails)
    not_found: Route = field(default_factory=lambda: Route(404, body=b"<html><body>Not found</body></html>"))

    def route(self, path: str) -> Route:
        """The route for a path (query ignored), else 404."""
        path = path.split("?", 1)[0] or "/"
        return self.routes.get(path) or self.routes.get(path.rstrip("/") or "/") or self.not_found


def _route_from_spec(spec: Mapping[str, object], base: Path | None, default: Route | None) -> Route:
    headers = dict(default.headers) if default else {"Content-Type": "text/html; charset=utf-8"}
    body = default.body if default else b""
    status = int(spec.get("status", default.status if default else 200))  # type: ignore[call-overload]
    if "redirect" in spec:
        headers = {"Location": str(spec["redirect"])}
        body = b""
        status = int(spec.get("status", 301))  # type: ignore[call-overload]
    for name, value in dict(spec.get("headers") or {}).items():  # type: ignore[call-overload]
        headers[str(name)] = str(value)
    if "file" in spec and base is not None:
        body = (base / str(spec["file"])).read_bytes()
    if "body" in spec:
        body = str(spec["body"]).encode("utf-8")
    if "size" in spec:
        size = int(spec["size"])  # type: ignore[call-overload]
        body = (body + b"<!-- padding -->" * (size // 16 + 1))[:size]
    return Route(status, tuple(headers.items()), body, float(spec.get("delay", 0)))  # type: ignore[arg-type]


def load_site(directory: Path) -> Site:
    """A site from ``<root>/<host>/``: files by path (``index.html`` is ``/``) and ``_site.json``."""
    site = Site(directory.name)
    for file in sorted(directory.rglob("*")):
        if not file.is_file() or file.name == "_site.json":
            continue
        rel = file.relative_to(directory).as_posix()
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        route = Route(headers=(("Content-Type", ctype),), body=file.read_bytes())
        site.routes["/" + rel] = route
        if rel == "index.html" or rel.endswith("/index.html"):
            site.routes["/" + rel[: -len("index.html")]] = route
            site.routes[("/" + rel[: -len("/index.html")]) or "/"] = route
        elif rel.endswith(".html"):
            site.routes["/" + rel[: -len(".html")]] = route
    spec_file = directory / "_site.json"
    if spec_file.exists():
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        site.https = bool(spec.get("https", True))
        site.http = bool(spec.get("http", True))
        site.tls = str(spec.get("tls", "ok"))
        for path, rspec in (spec.get("routes") or {}).items():
            site.routes[path] = _route_from_spec(rspec, directory, site.routes.get(path))
    return site


def load_sites(root: Path) -> dict[str, Site]:
    """Every ``<root>/<host>/`` directory as a Site, by host name."""
    return {d.name: load_site(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith((".", "_"))}


async def read_request_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    """One HTTP/1 request from ``reader``: (method, target, lower-cased headers), its body read
    and dropped; None at the end of the stream or on a malformed request line."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if length:
        await reader.readexactly(length)
    return parts[0], parts[1], headers


class ServerThread:
    """An asyncio server on a daemon thread of its own (the demo proxy, the tests' servers).

    ``start()`` returns the bound port once the server listens, or raises the bind error;
    ``stop()`` stops the loop and joins the thread.  ``options`` go to ``asyncio.start_server``.
    """

    def __init__(self, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any], host: str,
                 port: int, name: str, **options: Any) -> None:
        self.handle, self.host, self.port, self.name, self.options = handle, host, port, name, options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        ready = threading.Event()
        failed: list[OSError] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self.handle, self.host, self.port, **self.options))
            except OSError as exc:  # the port is taken, or not ours to bind
                failed.append(exc)
                loop.close()
                self._loop = None
                ready.set()
                return
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            self._thread.join(10)
            raise failed[0]
        return self.port

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


class VirtualHostProxy:
    """The proxy server; ``start()`` runs it on a background thread, ``url`` is its address."""

    def __init__(
        self,
        sites: Mapping[str, Site] | Callable[[str], Site | None],
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._lookup = sites if callable(sites) else sites.get
        #: Called as ``on_request(scheme, host, path)`` for each page request (tests watch the crawl).
        self.on_request = on_request
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.requests = 0
        self._serving: ServerThread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what to give ``--proxy``."""
        return f"http://{self.host}:{self.port}"

    def lookup(self, host: str) -> Site | None:
        """The site for a host name (lower-case, no port), if any."""
        return self._lookup(host.lower().rstrip("."))

    # -------------------------------------------------------------- lifecycle
    def start(self) -> VirtualHostProxy:
        """Serve on a daemon thread; returns once the port is bound."""
        self._serving = ServerThread(self._handle, self.host, self.port, "vhost-proxy", backlog=1024)
        self.port = self._serving.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._serving is not None:
            self._serving.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for ``python -m`` use)."""
        async def main() -> None:
            server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
            self.port = server.sockets[0].getsockname()[1]
            print(self.url, flush=True)
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    # -------------------------------------------------------------- protocol
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.LimitOverrunError):
            pass
        except OSError:
            pass
        finally:
            with contextlib.suppress(Exception):  # the peer may be gone already
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        scheme = "http"
        tunnel_host = ""
        while True:
            request = await read_request_head(reader)
            if request is None:
                return
            method, target, headers = request
            self.requests += 1
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                site = self.lookup(host)
                if site is None:
                    await self._proxy_error(writer, 502, "DNS lookup failed", "dns_error")
                    return
                if port != "443" or not site.https or self.ssl_context is None:
                    await self._proxy_error(writer, 502, "Connection refused", "connection_refused")
                    return
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                if site.tls == "broken":
                    # Answer the ClientHello with plain text, like a server with TLS
                    # misconfigured on port 443, and let the client give up first.
                    await reader.read(1)
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    await asyncio.wait_for(reader.read(), 10)
                    return
                await writer.start_tls(self.ssl_context)
                scheme, tunnel_host = "https", host
                continue
            if target.startswith(("http://", "https://")):
                split = urlsplit(target)
                host, path = split.hostname or "", (split.path or "/") + (f"?{split.query}" if split.query else "")
                scheme = split.scheme if not tunnel_host else "https"
            else:
                host, path = (tunnel_host or headers.get("host", "").rsplit(":", 1)[0]), target
            site = self.lookup(host)
            if site is None:
                await self._proxy_error(writer, 502, "DNS lookup failed", "dns_error", keep=True)
                continue
            if scheme == "http" and not site.http:
                await self._proxy_error(writer, 502, "Connection refused", "connection_refused", keep=True)
                continue
            if self.on_request is not None:
                self.on_request(scheme, host, path)
            route = site.route(path)
            if route.delay:
                await asyncio.sleep(route.delay)
            body = b"" if method == "HEAD" else route.body
            head = [f"HTTP/1.1 {route.status} {_reason(route.status)}"]
            head += [f"{k}: {v}" for k, v in route.headers if k.lower() != "content-length"]
            head.append(f"Content-Length: {len(route.body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return

    async def _proxy_error(
        self, writer: asyncio.StreamWriter, status: int, reason: str, error: str, *, keep: bool = False
    ) -> None:
        body = f"{PROXY_NAME}: {reason}\n".encode()
        writer.write(
            (
                f"HTTP/1.1 {status} {reason}\r\nProxy-Status: {PROXY_NAME}; error={error}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            + body
        )
        await writer.drain()


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def sites_from_routes(host_routes: Mapping[str, Mapping[str, Route]]) -> dict[str, Site]:
    """Sites built in code: {host: {path: Route}}."""
    return {h: Site(h, dict(r)) for h, r in host_routes.items()}


def hosts_of(sites: Iterable[Site]) -> list[str]:
    """Host names of sites, sorted."""
    return sorted(s.host for s in sites)
