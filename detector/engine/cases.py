"""Offline inputs for the engine: JSON Lines cases, HAR files, saved HTML with headers."""

from __future__ import annotations

import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from detector.engine.page import Page, normalize_headers
from detector.errors import BinaryInputError, PageError
from detector.textinput import check_readable


def _open_binary(path: Path | str) -> BinaryIO:
    """The file's bytes, gunzipped when it starts with gzip's magic number (``-``: stdin)."""
    if str(path) == "-":
        stdin = sys.stdin.buffer
        head = stdin.peek(2)[:2] if hasattr(stdin, "peek") else b""
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=stdin)  # type: ignore[return-value]
        return stdin
    p = check_readable(path)
    with p.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")  # type: ignore[return-value]
    return p.open("rb")


def _open_text(path: Path | str) -> io.TextIOBase:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8")


def iter_cases(path: Path | str) -> Iterator[dict[str, Any]]:
    """Cases from a JSON Lines file (``.gz`` or plain, ``-`` for stdin), one dict per line.

    A line that is not a JSON object raises PageError naming the file and line.
    """
    with _open_binary(path) as f:
        for n, line in _numbered_lines(f, path):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PageError(f"{path} line {n}: not JSON ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise PageError(f"{path} line {n}: expected a JSON object with url, headers and html")
            obj.setdefault("id", n)
            yield obj


def _numbered_lines(f: BinaryIO, path: Path | str) -> Iterator[tuple[int, str]]:
    """(number, line) of a cases file; a file that is not UTF-8 text (or not gzip) stops with a
    message naming the line (each line is decoded on its own, so the number is the bad line's)."""
    reading = 1  # the line being read when it fails
    try:
        for n, raw in enumerate(f, 1):
            reading = n
            if b"\0" in raw:
                raise UnicodeDecodeError("utf-8", b"\0", 0, 1, "NUL byte")
            yield n, raw.decode("utf-8")
            reading = n + 1
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise BinaryInputError(
            f"{path} line {reading}: not UTF-8 text ({exc.__class__.__name__}: {exc}). --cases takes JSON Lines: "
            "one JSON object per line, UTF-8, plain or gzip-compressed; nothing was read past this line."
        ) from None


def page_from_case(case: Mapping[str, Any]) -> Page:
    """A Page from a corpus case: id, url, status, headers {name: [values]}, html, script_urls."""
    html = case.get("html") or ""
    if not isinstance(html, str):
        raise PageError(f"case {case.get('id')}: html must be text")
    return Page.from_http(
        case.get("url") or "",
        status=case.get("status"),
        headers=case.get("headers") or {},
        body=html,
        script_urls=case.get("script_urls") or (),
    )


def read_headers_file(path: Path | str) -> dict[str, tuple[str, ...]]:
    """Headers from a file: raw ``Name: value`` lines (a status line is skipped) or JSON."""
    text = check_readable(path).read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return normalize_headers(json.loads(stripped))
        except json.JSONDecodeError as exc:
            raise PageError(f"{path}: invalid JSON headers ({exc.msg})") from None
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("HTTP/"):
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise PageError(f"{path} line {n}: expected 'Name: value', got {line[:60]!r}")
        pairs.append((name.strip(), value.strip()))
    return normalize_headers(pairs)


def pages_from_har(path: Path | str) -> Iterator[tuple[str, Page]]:
    """One Page per HTML document of a HAR capture, with the scripts that page requested.

    Entries with a ``pageref`` form one page: its first successful HTML document, with every
    script of that ``pageref``.  Each successful HTML document without a ``pageref`` is a page
    of its own.  A script is credited to a page only when its ``pageref`` names that page or,
    when it has none, its ``Referer`` header does (the page's URL, or, for a referrer cut to
    an origin, the one page of that origin); a script nothing ties to a page is left out,
    since it may have been requested by another site of the same capture.
    """
    try:
        with _open_text(path) as f:
            har = json.load(f)
    except json.JSONDecodeError as exc:
        raise PageError(f"{path}: not a HAR file (invalid JSON: {exc.msg})") from None
    entries = (har.get("log") or {}).get("entries") if isinstance(har, dict) else None
    if not entries or not isinstance(entries, list):
        raise PageError(f"{path}: no log.entries; is this a HAR capture?")
    entries = [e for e in entries if isinstance(e, dict)]
    docs: list[tuple[str, dict[str, Any]]] = []  # (page id, document entry)
    by_ref: dict[str, int] = {}
    for e in entries:
        if not (_is_html(e) and 200 <= _status(e) < 300):
            continue
        ref = str(e.get("pageref") or "")
        if ref:
            if ref in by_ref:
                continue  # a later document of the same page (a frame): its scripts count by pageref
            by_ref[ref] = len(docs)
        docs.append((ref, e))
    scripts: list[list[str]] = [[] for _ in docs]
    by_url: dict[str, int] = {}
    by_origin: dict[str, list[int]] = {}
    for n, (_, doc) in enumerate(docs):
        url = _url(doc)
        by_url.setdefault(url, n)
        by_origin.setdefault(_origin_of(url), []).append(n)
    for e in entries:
        if not _is_script(e):
            continue
        ref = str(e.get("pageref") or "")
        if ref:
            target = by_ref.get(ref)
        else:
            target = _page_of_referer(_request_header(e, "referer"), by_url, by_origin)
        if target is not None:
            scripts[target].append(_url(e))
    for n, (ref, doc) in enumerate(docs):
        resp = doc.get("response") or {}
        headers = [(h["name"], h["value"]) for h in resp.get("headers", []) if "name" in h and "value" in h]
        content = resp.get("content") or {}
        body = content.get("text") or ""
        if content.get("encoding") == "base64" and body:
            import base64

            body = base64.b64decode(body).decode("utf-8", "replace")
        yield ref or _url(doc), Page.from_http(
            _url(doc), status=resp.get("status"), headers=headers, body=body, script_urls=scripts[n]
        )


def _page_of_referer(referer: str, by_url: Mapping[str, int], by_origin: Mapping[str, list[int]]) -> int | None:
    """The page a Referer names: the page of that URL, or the only page of a bare origin."""
    if not referer:
        return None
    if referer in by_url:
        return by_url[referer]
    origin = _origin_of(referer)
    if referer.rstrip("/") == origin:
        pages = by_origin.get(origin) or []
        if len(pages) == 1:
            return pages[0]
    return None


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased.

    >>> _origin_of("https://A.example/x?y")
    'https://a.example'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ""
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme.lower()}://{host.lower()}"


def _url(entry: Mapping[str, Any]) -> str:
    return str((entry.get("request") or {}).get("url") or "")


def _status(entry: Mapping[str, Any]) -> int:
    status = (entry.get("response") or {}).get("status")
    return status if isinstance(status, int) else 0


def _request_header(entry: Mapping[str, Any], name: str) -> str:
    for h in (entry.get("request") or {}).get("headers") or ():
        if isinstance(h, dict) and str(h.get("name", "")).lower() == name:
            return str(h.get("value") or "")
    return ""


def _mime(entry: Mapping[str, Any]) -> str:
    return str(((entry.get("response") or {}).get("content") or {}).get("mimeType") or "").lower()


def _is_html(entry: Mapping[str, Any]) -> bool:
    return "html" in _mime(entry)


def _is_script(entry: Mapping[str, Any]) -> bool:
    mime = _mime(entry)
    url = str((entry.get("request") or {}).get("url", ""))
    return "javascript" in mime or "ecmascript" in mime or url.split("?")[0].endswith(".js")
