"""Page: what one HTTP response shows (url, status, headers, cookies, body), parsed once.

``Page`` is a plain value; :func:`parse_page` turns it into the views the engine matches
(meta tags, script URLs, inline scripts, CSS, visible text, cookies, the DOM).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

HeaderInput = Mapping[str, Any] | Iterable[tuple[str, str]]

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def normalize_headers(headers: HeaderInput | None) -> dict[str, tuple[str, ...]]:
    """Headers as {lower-case name: (values...)}, whatever shape they came in.

    >>> normalize_headers({"Server": "nginx", "Set-Cookie": ["a=1", "b=2"]})
    {'server': ('nginx',), 'set-cookie': ('a=1', 'b=2')}
    """
    out: dict[str, list[str]] = {}
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        key = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).strip().lower()
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None:
                continue
            out.setdefault(key, []).append(v.decode("latin-1") if isinstance(v, bytes) else str(v))
    return {k: tuple(v) for k, v in out.items()}


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type value.

    >>> charset_from_content_type("text/html; charset=ISO-8859-1")
    'iso-8859-1'
    """
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.IGNORECASE)
    return m.group(1).lower() if m else None


def decode_body(body: bytes, content_type: str | None = None) -> str:
    """Decode a response body: BOM, header charset, ``<meta charset>``, UTF-8, then windows-1252."""
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(enc, errors="replace")
    candidates: list[str | None] = [charset_from_content_type(content_type)]
    m = _META_CHARSET.search(body[:4096])
    if m:
        candidates.append(m.group(1).decode("ascii", "replace").lower())
    for charset in candidates:
        if not charset:
            continue
        try:
            codecs.lookup(charset)
        except LookupError:
            continue
        try:
            return body.decode(charset)
        except UnicodeDecodeError:
            return body.decode(charset, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("windows-1252", errors="replace")


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page: URL, status, headers (lower-case names), HTML and extras."""

    url: str = ""
    status: int | None = None
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    html: str = ""
    cookies: Mapping[str, str] = field(default_factory=dict)
    script_urls: tuple[str, ...] = ()

    @classmethod
    def from_http(
        cls,
        url: str = "",
        *,
        status: int | None = None,
        headers: HeaderInput | None = None,
        body: bytes | str = "",
        cookies: Mapping[str, str] | None = None,
        script_urls: Iterable[str] = (),
    ) -> Page:
        """Build a page from raw response parts; bytes bodies are decoded like a browser would."""
        hdrs = normalize_headers(headers)
        if isinstance(body, bytes):
            ctype = (hdrs.get("content-type") or ("",))[-1]
            html = decode_body(body, ctype)
        else:
            html = body
        return cls(url or "", status, hdrs, html, dict(cookies or {}), tuple(script_urls))


def parse_cookies(page: Page) -> dict[str, str]:
    """Cookies the page sets (``Set-Cookie``) plus those given, lower-case names.

    >>> parse_cookies(Page(headers={"set-cookie": ("PHPSESSID=1; path=/", "_ga_ABC=2")}))
    {'phpsessid': '1', '_ga_*': '2'}
    """
    out: dict[str, str] = {}
    for name, value in page.cookies.items():
        out[_cookie_key(name)] = value
    for line in page.headers.get("set-cookie", ()):
        first = line.split(";", 1)[0]
        name, eq, value = first.partition("=")
        key = _cookie_key(name.strip())
        if key:
            out[key] = value.strip() if eq else ""
    return out


_GA4 = re.compile(r"_ga_[a-z0-9]+")


def _cookie_key(name: str) -> str:
    key = name.strip().lower()
    # Google Analytics 4 names its cookie after the property; signatures write `_ga_*`.
    return "_ga_*" if _GA4.search(key) else key


@dataclass(slots=True)
class ParsedPage:
    """The views of a page the engine matches, computed once per page."""

    page: Page
    url: str
    html: str
    headers: Mapping[str, tuple[str, ...]]
    cookies: dict[str, str]
    meta: dict[str, list[str]]
    script_src: list[str]
    scripts: str
    css: str
    text: str
    dom: LexborHTMLParser | None


#: Elements nested deeper than this are not built into the DOM.  HTML5 tree construction
#: costs time proportional to the nesting depth for every start tag, so a hostile page of
#: 200,000 nested <div>s would take minutes; browsers cap the depth too (Chromium at 512).
MAX_DOM_DEPTH = 4096
#: At most this many script URLs per page are matched (real pages have dozens).
MAX_SCRIPT_URLS = 2000
_TAG = re.compile(
    # void elements, and elements whose end tag the parser implies (a <p> or <li> closes
    # the previous one), do not deepen the tree
    r"<(/?)(?!(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr"
    r"|p|li|dt|dd|option|optgroup|tr|td|th|rb|rt|rp)\b)[A-Za-z]"
)
_DEPTH = {"": 1, "/": -1}


def dom_input(html: str, limit: int = MAX_DOM_DEPTH) -> str:
    """The part of ``html`` given to the DOM parser: all of it, unless tags nest deeper than ``limit``.

    The depth is estimated from start and end tags (void elements and elements whose end
    tag is implied left out); real pages stay far below the limit.

    >>> dom_input("<div><p>x</p></div>") == "<div><p>x</p></div>"
    True
    >>> dom_input("<div>" * 5 + "x", limit=3)
    '<div><div><div>'
    """
    if html.count("<") <= limit:
        return html
    signs = _TAG.findall(html)
    depth = peak = 0
    for depth in accumulate(map(_DEPTH.__getitem__, signs)):
        if depth > peak:
            peak = depth
            if peak > limit:
                break
    if peak <= limit:
        return html
    depth = 0
    for m in _TAG.finditer(html):
        depth += _DEPTH[m.group(1)]
        if depth > limit:
            return html[: m.start()]
    return html


def parse_page(page: Page) -> ParsedPage:
    """Parse the HTML once (lexbor, an HTML5 parser) and extract every view."""
    html = page.html or ""
    tree: LexborHTMLParser | None = LexborHTMLParser(dom_input(html)) if html else None
    meta: dict[str, list[str]] = {}
    script_src: list[str] = []
    inline: list[str] = []
    css_parts: list[str] = []
    text = ""
    origin = _origin(page.url)
    if tree is not None:
        # One selector pass (the first query on a document is the expensive one).
        for node in tree.css("meta, script, style"):
            tag = node.tag
            if tag == "meta":
                attrs = node.attributes
                key = attrs.get("name") or attrs.get("property")
                if key:
                    meta.setdefault(key.lower(), []).append(attrs.get("content") or "")
            elif tag == "script":
                src = node.attributes.get("src")
                if src and not src.startswith("data:text/javascript;") and len(script_src) < MAX_SCRIPT_URLS:
                    script_src.append(_absolute(src, page.url, origin))
                body = node.text(deep=True)
                if body:
                    inline.append(body)
            elif tag == "style":
                css_parts.append(node.text(deep=True) or "")
        body_node = tree.body
        text = body_node.text(deep=True, separator="") if body_node is not None else ""
    seen = set(script_src)
    for extra in page.script_urls[:MAX_SCRIPT_URLS]:
        if extra not in seen:
            seen.add(extra)
            script_src.append(extra)
    return ParsedPage(
        page=page,
        url=page.url or "",
        html=html,
        headers=page.headers,
        cookies=parse_cookies(page),
        meta=meta,
        script_src=script_src,
        scripts=",".join(inline),
        css="\n".join(css_parts),
        text=text,
        dom=tree,
    )


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, or "" when it has none.

    >>> _origin("https://a.example:8443/x/y?z")
    'https://a.example:8443'
    """
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)", url)
    return m.group(1) if m else ""


def _absolute(src: str, base: str, origin: str = "") -> str:
    """A script URL made absolute against the page URL, as a browser resolves it."""
    src = src.strip()
    if not base or src.startswith(("https://", "http://")):
        return src
    if origin and src.startswith("/") and not src.startswith("//") and "/." not in src and "\\" not in src:
        return origin + src  # the common case, without urljoin's cost
    try:
        return urljoin(base, src)
    except ValueError:
        return src
