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


#: WHATWG Encoding Standard labels (https://encoding.spec.whatwg.org/#names-and-labels) of
#: the encodings browsers decode, as Python codec names.  A label of the "replacement"
#: encoding (ISO-2022-KR, HZ...) or x-user-defined maps to None: not used, the fallbacks are.
_WHATWG: dict[str, tuple[str, ...]] = {
    "utf-8": ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"),
    "cp866": ("866", "cp866", "csibm866", "ibm866"),
    "iso8859-2": ("csisolatin2", "iso-8859-2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2",
                  "iso_8859-2:1987", "l2", "latin2"),
    "iso8859-3": ("csisolatin3", "iso-8859-3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3",
                  "iso_8859-3:1988", "l3", "latin3"),
    "iso8859-4": ("csisolatin4", "iso-8859-4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4",
                  "iso_8859-4:1988", "l4", "latin4"),
    "iso8859-5": ("csisolatincyrillic", "cyrillic", "iso-8859-5", "iso-ir-144", "iso8859-5", "iso88595",
                  "iso_8859-5", "iso_8859-5:1988"),
    "iso8859-6": ("arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114",
                  "iso-8859-6", "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso8859-6", "iso88596",
                  "iso_8859-6", "iso_8859-6:1987"),
    "iso8859-7": ("csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-8859-7", "iso-ir-126",
                  "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987", "sun_eu_greek"),
    "iso8859-8": ("csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8", "iso-8859-8-e", "iso-ir-138",
                  "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988", "visual", "csiso88598i",
                  "iso-8859-8-i", "logical"),
    "iso8859-10": ("csisolatin6", "iso-8859-10", "iso-ir-157", "iso8859-10", "iso885910", "l6", "latin6"),
    "iso8859-13": ("iso-8859-13", "iso8859-13", "iso885913"),
    "iso8859-14": ("iso-8859-14", "iso8859-14", "iso885914"),
    "iso8859-15": ("csisolatin9", "iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9"),
    "iso8859-16": ("iso-8859-16",),
    "koi8-r": ("cskoi8r", "koi", "koi8", "koi8-r", "koi8_r"),
    "koi8-u": ("koi8-ru", "koi8-u"),
    "mac-roman": ("csmacintosh", "mac", "macintosh", "x-mac-roman"),
    "cp874": ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874"),
    "cp1250": ("cp1250", "windows-1250", "x-cp1250"),
    "cp1251": ("cp1251", "windows-1251", "x-cp1251"),
    "cp1252": ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1",
               "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1",
               "us-ascii", "windows-1252", "x-cp1252"),
    "cp1253": ("cp1253", "windows-1253", "x-cp1253"),
    "cp1254": ("cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599", "iso_8859-9",
               "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254"),
    "cp1255": ("cp1255", "windows-1255", "x-cp1255"),
    "cp1256": ("cp1256", "windows-1256", "x-cp1256"),
    "cp1257": ("cp1257", "windows-1257", "x-cp1257"),
    "cp1258": ("cp1258", "windows-1258", "x-cp1258"),
    "mac-cyrillic": ("x-mac-cyrillic", "x-mac-ukrainian"),
    "gb18030": ("chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk", "iso-ir-58",
                "x-gbk", "gb18030"),
    "big5hkscs": ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "euc_jp": ("cseucpkdfmtjapanese", "euc-jp", "x-euc-jp"),
    "iso2022_jp": ("csiso2022jp", "iso-2022-jp"),
    "cp932": ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis", "windows-31j", "x-sjis"),
    "cp949": ("cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987", "ks_c_5601-1989",
              "ksc5601", "ksc_5601", "windows-949"),
    "utf-16-be": ("unicodefffe", "utf-16be"),
    "utf-16-le": ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"),
    "": ("csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr", "replacement",
         "x-user-defined"),
}
_LABELS: dict[str, str] = {label: codec for codec, labels in _WHATWG.items() for label in labels}
#: Codecs Python calls text encodings that no web page is written in (they raise, or turn
#: escapes or host names into text).
_NOT_CHARSETS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7",
                           "unicode-internal"})


def text_encoding(label: str | None, *, from_meta: bool = False) -> str | None:
    """The Python codec for a declared charset label, or None when it is no text encoding.

    WHATWG labels map as browsers map them (``iso-8859-1`` and ``ascii`` are windows-1252);
    another label is accepted only if Python knows it as a text encoding.  A ``<meta>`` that
    declares UTF-16 means UTF-8 (the tag could not have been read otherwise).

    >>> text_encoding("latin1"), text_encoding("hex"), text_encoding("bogus"), text_encoding("cp437")
    ('cp1252', None, None, 'cp437')
    """
    if not label:
        return None
    name = label.strip().lower()
    codec = _LABELS.get(name)
    if codec is None:
        try:
            info = codecs.lookup(name)
        except (LookupError, ValueError, TypeError):
            return None
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            return None
        codec = info.name
    if not codec:
        return None
    if from_meta and codec.replace("_", "-").startswith(("utf-16", "utf-32")):
        return "utf-8"
    return codec


def decode_body(body: bytes, content_type: str | None = None) -> str:
    """Decode a response body, never raising (the codec is :func:`body_encoding`'s choice).

    >>> decode_body('<meta charset="hex"><p>café</p>'.encode())[-8:]
    'café</p>'
    """
    codec, skip = _choose(body, content_type)
    return body[skip:].decode(codec, errors="replace")


def body_encoding(body: bytes, content_type: str | None = None) -> str:
    """The codec a body is decoded with; always one that decodes it without raising.

    Order: a BOM (which browsers let override any declaration), the Content-Type charset,
    the ``<meta charset>``, UTF-8, then windows-1252.  A declared charset is used only if it
    is a real text encoding (see :func:`text_encoding`); bytes it cannot decode become U+FFFD.

    >>> body_encoding(b'<meta charset="base64">caf\\xc3\\xa9'), body_encoding(b"caf\\xe9", "text/html; charset=hex")
    ('utf-8', 'windows-1252')
    """
    return _choose(body, content_type)[0]


def _choose(body: bytes, content_type: str | None) -> tuple[str, int]:
    """(codec, bytes of BOM to skip)."""
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return enc, len(bom)
    declared = [text_encoding(charset_from_content_type(content_type))]
    m = _META_CHARSET.search(body[:4096])
    if m:
        declared.append(text_encoding(m.group(1).decode("ascii", "replace"), from_meta=True))
    for codec in declared:
        if codec is None:
            continue
        try:
            body[:4096].decode(codec, errors="replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue  # a codec that fails even with errors="replace" is not used
        return codec, 0
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252", 0
    return "utf-8", 0


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page: URL, status, headers (lower-case names), HTML and extras."""

    url: str = ""
    status: int | None = None
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    html: str = ""
    cookies: Mapping[str, str] = field(default_factory=dict)
    script_urls: tuple[str, ...] = ()
    #: What a browser saw, for the rendered tier (see :mod:`detector.engine.browser`): the
    #: values of the library's ``js`` property paths on ``window`` (path -> value as text),
    #: the hosts the page's XHR and fetch requests went to, and ``dom`` rule properties
    #: (selector -> {property: value as text}).  A page with ``tier="rendered"`` is a
    #: snapshot of the rendered DOM; every piece of evidence it gives says so.
    js: Mapping[str, str] = field(default_factory=dict)
    xhr: tuple[str, ...] = ()
    dom_properties: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tier: str = "static"

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
        for cookie in split_set_cookie(line) if "," in line else (line,):
            first = cookie.split(";", 1)[0]
            name, eq, value = first.partition("=")
            key = _cookie_key(name.strip())
            if key:
                out[key] = value.strip() if eq else ""
    return out


#: A comma that starts another cookie: the next ``;``-free text up to ``=`` is a cookie name
#: (a token: no spaces, commas or separators).  The comma in an ``Expires`` date is followed
#: by a day and a space ("Wed, 21 Oct 2026 ..."), never by ``name=``.
_NEXT_COOKIE = re.compile(r",\s*(?=[!#$%&'*+\-.^_`|~0-9A-Za-z]+=)")


def split_set_cookie(value: str) -> list[str]:
    """The cookies of a ``Set-Cookie`` value that was folded into one line with commas
    (as some HTTP clients and proxies join repeated headers).

    >>> split_set_cookie("a=1; Path=/, b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
    ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT']
    """
    return [part.strip() for part in _NEXT_COOKIE.split(value) if part.strip()]


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
    #: The inline scripts that are code or configuration (JSON-LD left out), for the
    #: script_loader source (see detector.engine.loader).
    script_code: str
    css: str
    text: str
    dom: LexborHTMLParser | None
    #: URLs of ``<script>`` elements without a ``src`` whose URL waits in another attribute
    #: (``data-src``, ``data-borlabs-script-blocker-src``...): scripts a consent manager or a
    #: lazy loader will insert, script URLs a consent manager holds in a ``data-*`` attribute,
    #: and scripts inside IE conditional comments.  The default mode matches them as
    #: ``script_loader`` URLs.
    deferred_src: list[str] = field(default_factory=list)


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
    code: list[str] = []
    css_parts: list[str] = []
    deferred: list[str] = []
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
                attrs = node.attributes
                src = attrs.get("src")
                if src and not src.startswith("data:text/javascript;") and len(script_src) < MAX_SCRIPT_URLS:
                    script_src.append(_absolute(src, page.url, origin))
                elif not src and len(deferred) < MAX_SCRIPT_URLS:
                    for later in _deferred_srcs(attrs):
                        deferred.append(_absolute(later, page.url, origin))
                body = node.text(deep=True)
                if body:
                    inline.append(body)
                    if (attrs.get("type") or "").strip().lower() != "application/ld+json":
                        code.append(body)
            elif tag == "style":
                css_parts.append(node.text(deep=True) or "")
        body_node = tree.body
        text = body_node.text(deep=True, separator="") if body_node is not None else ""
    if "<!--[" in html:  # (``<!--[if`` in any case: the comment's regex ignores case)
        for held in _conditional_script_srcs(html)[: max(0, MAX_SCRIPT_URLS - len(deferred))]:
            deferred.append(_absolute(held, page.url, origin))
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
        script_code="\n".join(code),
        css="\n".join(css_parts),
        text=text,
        dom=tree,
        deferred_src=deferred,
    )


#: ``<script ... src=...>`` in markup that an attribute holds (a consent manager's
#: ``data-content="&lt;script src=...&gt;"``); the parser has decoded the entities.
_HELD_SCRIPT = re.compile(r"""<script\b[^>]{0,500}?\bsrc\s{0,5}=\s{0,5}["']?([^"'\s>]{1,1024})""", re.IGNORECASE)
#: Script URLs read from the attributes of one element.
_MAX_HELD = 8


def _deferred_srcs(attrs: Mapping[str, str | None]) -> list[str]:
    """The URLs a ``<script>`` without ``src`` keeps for later, in its ``data-*`` attributes:
    a ``data-*src`` URL (a lazy loader's), then the ``<script src>`` URLs of markup a consent
    manager holds there to insert once the visitor agrees.

    >>> _deferred_srcs({"type": "text/template", "data-borlabs-script-blocker-src": "//cdn.example/a.js"})
    ['//cdn.example/a.js']
    >>> _deferred_srcs({"data-src": "x"}), _deferred_srcs({"data-srcset": "/a.js"})
    ([], [])
    >>> _deferred_srcs({"type": "text/plain", "data-content": '<script src="https://cdn.example/a.js" async></script>'})
    ['https://cdn.example/a.js']
    >>> _deferred_srcs({"data-content": "<p>no script</p>"}), _deferred_srcs({"title": "<script src=x.js>"})
    ([], [])
    """
    found: list[str] = []
    held: list[str] = []
    for name, value in attrs.items():
        if not (name.startswith("data-") and value):
            continue
        if name.endswith("src") and not found:
            value = value.strip()
            if value.startswith(("http://", "https://", "//", "/")) or value.endswith(".js"):
                found.append(value)
        elif "<" in value:
            held.extend(m.group(1) for m in _HELD_SCRIPT.finditer(value))
    return found + held[:_MAX_HELD]


#: An IE conditional comment: markup that Internet Explorer ran, which HTML5 parsers keep as
#: a comment.  Its scripts are the site's (shims such as html5shiv, respond.js, Modernizr).
_CONDITIONAL = re.compile(r"<!--\[if [^\]]{1,40}\]>(.{0,20000}?)<!\[endif\]-->", re.DOTALL | re.IGNORECASE)
#: Conditional comments read per page.
_MAX_CONDITIONAL = 32


def _conditional_script_srcs(html: str) -> list[str]:
    """Script URLs inside IE conditional comments (``<!--[if lt IE 9]><script src=...>``).

    >>> _conditional_script_srcs('<!--[if lt IE 9]><script src="/js/html5shiv.js"></script><![endif]-->')
    ['/js/html5shiv.js']
    >>> _conditional_script_srcs('<!--[IF IE]><SCRIPT SRC="/ie.js"></SCRIPT><![ENDIF]-->')
    ['/ie.js']
    """
    found: list[str] = []
    for n, m in enumerate(_CONDITIONAL.finditer(html)):
        if n >= _MAX_CONDITIONAL:
            break
        found.extend(s.group(1) for s in _HELD_SCRIPT.finditer(m.group(1)))
    return found


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
