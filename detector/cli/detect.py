"""``detector detect``: pages in (live URLs, saved HTML, HAR, case files), detections out."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from detector.cli.formats import (
    format_options,
    line,
    resolve_format,
    wappalyzer_record,
    wappalyzer_technology,
)
from detector.cli.options import (
    check_proxy,
    compat_option,
    engine_mode,
    exit_for,
    load_engine,
    render_option,
    signatures_option,
)
from detector.errors import DetectorError, MissingInputError
from detector.netpolicy import is_localhost, is_reserved_name, refusal
from detector.textinput import check_readable


@click.command()
@click.argument("urls", nargs=-1)
@click.option("--html", "html_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Analyse a saved HTML file ('-' for stdin) instead of fetching.")
@click.option("--url", "page_url", default="", help="The page's URL, for --html (url rules, script URLs).")
@click.option("--headers", "headers_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Response headers for --html: 'Name: value' lines or a JSON object.")
@click.option("--har", "har_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Analyse every HTML page of a HAR capture (with the scripts it loaded).")
@click.option("--cases", "cases_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="JSON Lines cases (id, url, status, headers, html), .gz or plain, '-' for stdin.")
@format_options("page")
@click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds per live fetch.")
@click.option("--min-confidence", default=0, show_default=True, type=click.IntRange(0, 100),
              help="Hide detections below this confidence (0-100).")
@compat_option
@click.option("--proxy", help="Fetch live URLs (and render them) through this HTTP proxy, e.g. http://proxy:3128.")
@click.option("--allow-private", is_flag=True,
              help="Fetch (and render) private, loopback and link-local addresses too (a local test server).")
@render_option
@signatures_option
def detect(
    urls: tuple[str, ...],
    html_file: Path | None,
    page_url: str,
    headers_file: Path | None,
    har_file: Path | None,
    cases_file: Path | None,
    fmt: str | None,
    as_json: bool,
    as_nl: bool,
    timeout: float,
    min_confidence: int,
    compat: str | None,
    proxy: str | None,
    allow_private: bool,
    render: str,
    signature_dirs: tuple[str, ...],
) -> None:
    """Detect the technologies of pages: live URLs, a saved HTML file, a HAR or JSON Lines cases.

    \b
    Examples:
      detector detect https://example.com
      detector detect --html page.html --url https://example.com/ --headers headers.txt
      detector detect --cases pages.jsonl.gz --nl
      detector detect --har capture.har --format line      # page [Tech:version,...]
      detector detect --html page.html --url https://example.com/ --format wappalyzer
      detector detect --compat wappalyzer --html page.html
      detector detect --render on https://example.com     # what a browser sees, too
    """
    sources = sum(bool(x) for x in (urls, html_file, har_file, cases_file))
    if sources != 1:
        raise click.UsageError("give URLs, or exactly one of --html, --har, --cases")
    output = resolve_format(fmt, as_json, as_nl)
    if (page_url or headers_file) and not html_file:
        raise click.UsageError("--url and --headers go with --html")
    check_proxy(proxy)
    try:  # a missing file fails now, not after the library is compiled
        for path in (html_file, headers_file, har_file, cases_file):
            if path is not None and str(path) != "-":
                check_readable(path)
    except DetectorError as exc:
        raise exit_for(exc) from None
    engine = load_engine(signature_dirs, mode=engine_mode(compat))
    browser = _browser(engine, render, proxy, allow_private) if urls else None
    try:
        pages = _pages(urls, html_file, page_url, headers_file, har_file, cases_file, timeout, proxy, allow_private)
        _emit(engine, pages if browser is None else browser.pages(pages), output, min_confidence)
    except DetectorError as exc:
        raise exit_for(exc) from None
    finally:
        if browser is not None:
            browser.close()


class _LiveBrowser:
    """The rendered tier for ``detect URL``: one browser for the command, a page per URL."""

    def __init__(self, engine: Any, mode: str, proxy: str | None, allow_private: bool = False) -> None:
        import asyncio

        from detector.crawl.render import Renderer, RenderSettings
        from detector.engine.browser import RenderAdvisor, browser_probes

        self.engine = engine
        self.mode = mode
        self.advisor = RenderAdvisor(engine.library)
        self.loop = asyncio.new_event_loop()
        chains, props = browser_probes(engine.library)
        self.renderer = Renderer(chains, props, RenderSettings(proxy=proxy, concurrency=1, allow_private=allow_private))

    def pages(self, pages: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
        """Each live page, and beside it what the browser saw (when rendering pays off)."""
        from detector.engine.browser import static_technologies
        from detector.engine.page import Page

        for ident, page in pages:
            if self.mode == "auto":
                found = static_technologies(self.engine.detect(page))
                if not self.advisor.reasons(page.html, found):
                    yield ident, page
                    continue
            snap = self.loop.run_until_complete(self.renderer.render(page.url))
            if not snap.read:
                click.echo(f"warning: {page.url}: not rendered ({snap.outcome}: {snap.message})", err=True)
                yield ident, page
                continue
            yield ident, (page, Page(url=snap.final_url or page.url, html=snap.html, js=snap.js, xhr=tuple(snap.xhr),
                                     dom_properties=snap.dom_properties, tier="rendered"))

    def close(self) -> None:
        """Close the browser and the loop."""
        self.loop.run_until_complete(self.renderer.close())
        self.loop.close()


def _browser(engine: Any, mode: str, proxy: str | None, allow_private: bool = False) -> _LiveBrowser | None:
    """The browser for ``--render`` on live URLs, or None (off, or auto without Chromium)."""
    from detector.crawl.render import unavailable_reason

    if mode == "off":
        return None
    reason = unavailable_reason()
    if reason is not None:
        if mode == "on":
            raise click.ClickException(f"--render on cannot run: {reason}")
        click.echo(f"warning: --render auto: pages are read statically only; {reason}", err=True)
        return None
    return _LiveBrowser(engine, mode, proxy, allow_private)


def _pages(urls: tuple[str, ...], html_file: Path | None, page_url: str, headers_file: Path | None,
           har_file: Path | None, cases_file: Path | None, timeout: float, proxy: str | None = None,
           allow_private: bool = False) -> Iterator[tuple[Any, Any]]:
    from detector.engine.cases import iter_cases, page_from_case, pages_from_har, read_headers_file
    from detector.engine.page import Page

    if cases_file is not None:
        for case in iter_cases(cases_file):
            yield case["id"], page_from_case(case)
    elif har_file is not None:
        yield from pages_from_har(har_file)
    elif html_file is not None:
        body = sys.stdin.buffer.read() if str(html_file) == "-" else _read_file(html_file)
        headers = read_headers_file(headers_file) if headers_file else {}
        yield str(html_file), Page.from_http(page_url, status=None, headers=headers, body=body)
    else:
        for url in urls:
            yield url, fetch_page(url, timeout, proxy, allow_private)


def _read_file(path: Path) -> bytes:
    check_readable(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MissingInputError(f"{path}: cannot read ({exc.strerror}). Check its permissions; nothing was read.") from None


class RefusedTarget(urllib.error.URLError):
    """A live URL (or a redirect) the network policy does not fetch."""


def target_refusal(url: str, proxy: str | None, allow_private: bool) -> str | None:
    """Why ``detect`` must not fetch ``url``, or None: only http(s); no private, loopback or
    metadata address literal, no ``localhost`` (unless ``allow_private``); and without a proxy
    no reserved name (``.test``...), which would go to the system resolver.

    >>> target_refusal("http://169.254.169.254/latest/", None, False)
    '169.254.169.254 is a metadata service address'
    >>> target_refusal("http://shop.test/", None, True)
    'shop.test is a reserved name: it is never sent to the system resolver (reach it with --proxy)'
    >>> target_refusal("http://shop.test/", "http://127.0.0.1:8080", False) is None
    True
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"{parts.scheme or 'no'} scheme: only http and https URLs are fetched"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "the URL names no host"
    if is_localhost(host):
        return None if allow_private else f"{host} is this machine (loopback)"
    if not proxy and is_reserved_name(host):
        return f"{host} is a reserved name: it is never sent to the system resolver (reach it with --proxy)"
    return refusal(host, allow_private=allow_private)


def _guarded_connect(allow_private: bool) -> Any:
    """``socket.create_connection`` for http.client that resolves the name itself and connects
    only to an address the policy allows (the address checked is the one connected to)."""
    import socket

    def connect(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                source_address: Any = None, **_: Any) -> socket.socket:
        host, port = address
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_rest, sockaddr in infos:
            reason = refusal(host, str(sockaddr[0]), allow_private=allow_private)
            if reason:
                raise RefusedTarget(reason)
        last: OSError | None = None
        for *_rest, sockaddr in infos:
            try:
                return socket.create_connection((str(sockaddr[0]), port), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError(f"{host}: no address")

    return connect


def _opener(proxy: str | None, allow_private: bool) -> urllib.request.OpenerDirector:
    """An opener that applies :func:`target_refusal` to every redirect and, without a proxy,
    checks the address it connects to."""
    import http.client

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            reason = target_refusal(newurl, proxy, allow_private)
            if reason:
                raise RefusedTarget(f"redirected to {newurl[:200]}: {reason}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    handlers: list[Any] = [Redirects()]
    if proxy:
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))  # the proxy resolves
    else:
        connect = _guarded_connect(allow_private)

        class Plain(http.client.HTTPConnection):
            _create_connection = staticmethod(connect)

        class Secure(http.client.HTTPSConnection):
            _create_connection = staticmethod(connect)

        class PlainHandler(urllib.request.HTTPHandler):
            def http_open(self, req: Any) -> Any:
                return self.do_open(Plain, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: Any) -> Any:
                return self.do_open(Secure, req)

        handlers += [urllib.request.ProxyHandler({}), PlainHandler(), SecureHandler()]
    return urllib.request.build_opener(*handlers)


def fetch_page(url: str, timeout: float, proxy: str | None = None, allow_private: bool = False) -> Any:
    """Fetch one page live (quick checks); errors say what failed and what to try instead.

    The crawl's network policy holds: no private, loopback or metadata address (the URL's,
    a redirect's, or the one a name resolves to) unless ``allow_private``, and without a
    proxy no reserved name goes to the system resolver.
    """
    from detector.engine.page import Page

    if "://" not in url:
        url = "https://" + url
    refused = target_refusal(url, proxy, allow_private)
    if refused:
        raise click.ClickException(f"{url}: not fetched: {refused}. {_POLICY_HINT}")
    req = urllib.request.Request(url, headers={"User-Agent": "detector/0.1 (+https://github.com/detector)"})
    try:
        with _opener(proxy, allow_private).open(req, timeout=timeout) as resp:
            body = resp.read(10 * 1024 * 1024)
            headers = [(k, v) for k, v in resp.headers.items()]
            return Page.from_http(resp.geturl(), status=resp.status, headers=headers, body=body)
    except RefusedTarget as exc:
        raise click.ClickException(f"{url}: not fetched: {exc.reason}. {_POLICY_HINT}") from None
    except urllib.error.HTTPError as exc:
        body = exc.read(10 * 1024 * 1024) if exc.fp else b""
        return Page.from_http(url, status=exc.code, headers=list(exc.headers.items()), body=body)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, RefusedTarget):
            raise click.ClickException(f"{url}: not fetched: {reason.reason}. {_POLICY_HINT}") from None
        raise click.ClickException(
            f"{url}: could not fetch ({reason}). Are you offline? "
            "Analyse a saved page with --html FILE or --cases FILE instead."
        ) from None


_POLICY_HINT = ("Private, loopback and metadata addresses are fetched only with --allow-private (a local test "
                "server, say); names under .test, .example, .invalid, .local only through --proxy")


def _emit(engine: Any, pages: Iterable[tuple[Any, Any]], output: str, min_confidence: int) -> None:
    out = sys.stdout  # CliRunner swaps sys.stdout, so this is read at call time
    collected = []
    first = True
    for ident, page in pages:
        if isinstance(page, tuple):  # (static page, rendered page): one verdict over both tiers
            page, rendered = page
            detections = [_as_detection(v) for v in engine.detect_site([page, rendered])]
        else:
            detections = engine.detect(page)
        found = [d for d in detections if d.confidence >= min_confidence]
        record = {"id": ident, "url": page.url, "technologies": [d.to_dict() for d in found]}
        if output == "nl":
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif output == "json":
            collected.append(record)
        elif output == "wappalyzer":
            out.write(json.dumps(_wappalyzer(engine.library, page.url or str(ident), page.status, found),
                                 ensure_ascii=False) + "\n")
        elif output == "line":
            out.write(line(page.url or str(ident), [(d.technology, d.version) for d in _by_name(found)]) + "\n")
        else:
            if not first:
                out.write("\n")
            first = False
            _print_table(out, ident, page.url, found)
    if output == "json":
        out.write(json.dumps(collected, ensure_ascii=False, indent=2) + "\n")


def _by_name(found: Iterable[Any]) -> list[Any]:
    return sorted(found, key=lambda d: d.technology.lower())


def _wappalyzer(library: Any, url: str, status: int | None, found: Iterable[Any]) -> dict[str, Any]:
    """One page as Wappalyzer's JSON: its URL and status, each technology with the library's
    slug, description, icon, website, cpe and category ids."""
    ids = {c.name: c.id for c in library.categories.values()}
    techs = []
    for d in found:
        sig = library.signatures.get(d.technology)
        info = sig.info if sig is not None else {}
        techs.append(wappalyzer_technology(d.technology, d.version, d.confidence, info,
                                           [(ids.get(c), c) for c in d.categories]))
    return wappalyzer_record(url, status, techs)


def _as_detection(verdict: Any) -> Any:
    """A site verdict of the two tiers as a page Detection (the shape ``detect`` prints)."""
    from detector.engine.match import Detection, Evidence

    evidence = tuple(
        Evidence(e["source"], e.get("pattern", ""), e.get("match", ""), e.get("url", ""), e.get("key", ""),
                 e.get("version", ""), e.get("confidence", 100), weak=e.get("weak", ""), value=e.get("value", ""),
                 tier=e.get("tier", "static"))
        for e in verdict.evidence
    )
    implied = tuple(e["match"] for e in verdict.evidence if e["source"] == "implied")
    return Detection(verdict.technology, verdict.version, verdict.confidence, verdict.categories, evidence, implied)


def _print_table(out: Any, ident: Any, url: str, found: list[Any]) -> None:
    title = f"{ident}" if not url or str(ident) == url else f"{ident} ({url})"
    click.echo(click.style(title, bold=True) + f": {len(found)} technologies", file=out)
    if not found:
        return
    rows = [
        (d.technology, d.version or "", str(d.confidence), ", ".join(d.categories),
         d.evidence[0].describe() if d.evidence else "")
        for d in sorted(found, key=lambda d: (d.categories[:1], d.technology.lower()))
    ]
    widths = [max(len(r[i]) for r in rows + [("technology", "version", "conf", "categories", "")]) for i in range(4)]
    widths = [min(w, 40) for w in widths]
    head = ("technology", "version", "conf", "categories", "evidence")
    for row in [head] + rows:
        cells = [row[i][: widths[i]].ljust(widths[i]) for i in range(4)]
        click.echo("  " + "  ".join(cells) + "  " + row[4][:100], file=out)


# ---------------------------------------------------------------------------- signatures
