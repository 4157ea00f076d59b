"""Script URLs that inline code builds at run time (the ``script_loader`` evidence source).

Most tags are installed as a snippet that creates a ``<script>`` element and sets its
``src`` from string literals, so the URL never appears in a ``<script src>``.  This module
recovers those URLs from the text of inline scripts, in general (no vendor is named):

* a string literal that starts with a scheme or ``//`` (``'https://www.example/x.js'``,
  ``"//cdn.example/a.js"``, JSON's ``"https:\\/\\/cdn.example\\/a.js"``);
* concatenations of literals, ``'https://' + 'cdn.example/a.js?id=' + id`` (the literal
  parts up to the first operand that is not a literal), including a parenthesised
  ternary on the scheme, ``('https:' == location.protocol ? 'https://ssl' : 'http://www')
  + '.example.com/ga.js'`` (each branch gives one URL);
* a host-and-path literal added to a scheme variable, ``proto + 'cdn.example/a.js'`` or
  ``p + '://platform.example/widgets.js'``;
* a literal assigned to a ``src`` (``s.src = '/js/a.js'``, ``{src: "..."}``,
  ``setAttribute('src', '...')``), which may be relative: it is resolved against the page URL.
  This covers the ``createElement('script')`` pattern, whose URL is always set this way.

A URL literal counts only when it is plausibly a script's: it is assigned to a ``src``, or
its path looks like code (``.js``, ``.mjs``, ``/js/``), or the word ``script`` occurs in the
:data:`CONTEXT` characters before it (``createElement('script')``, the ``'script'`` argument
of the classic snippets).  So a link in a JSON configuration (``"https://www.youtube.com/user/x"``)
is not taken for a loaded script.  URLs of images, fonts, media and documents are skipped.  The scan is linear: one regular-expression pass finds the anchors, each literal is
read with a bounded pattern, at most :data:`MAX_ANCHORS` anchors are looked at and at most
:data:`MAX_LOADER_URLS` distinct URLs of at most :data:`MAX_URL_LENGTH` characters kept.
"""

from __future__ import annotations

import re
from bisect import bisect_left

#: Anchors looked at per page (literals that start a URL, ``src`` assignments...).
MAX_ANCHORS = 4000
#: Distinct URLs kept per page.
MAX_LOADER_URLS = 200
#: Characters of one recovered URL (longer ones are cut).
MAX_URL_LENGTH = 1024
#: Literal parts joined into one URL.
MAX_PARTS = 8
#: Characters before a URL literal searched for the word "script".
CONTEXT = 300

# Each anchor search starts with a literal, so Python's re finds candidates at memchr speed
# (a leading character class or IGNORECASE would test every position).
_SLASHES = re.compile(r"/\\?/")  # the // of a URL, or JSON's \/\/
_SRC = re.compile(r"""src['"]?\s{0,8}[:=]\s{0,8}(['"`])""")  # s.src = '...', {src: "..."}, "src": "..."
_SET_SRC = re.compile(r"""setAttribute\(\s{0,8}['"]src['"]\s{0,8},\s{0,8}(['"`])""")
_PLUS_HOST = re.compile(r"""\+\s{0,8}(['"`])(?=[a-zA-Z0-9-]{1,63}(?:\.[a-zA-Z0-9-]{1,63}){1,8}/)""")  # proto + 'host/'
_QUOTES = "'\"`"
_WORD = re.compile(r"\w")
#: A literal's body and closing quote (possessive: no backtracking; the search is cut at
#: MAX_URL_LENGTH characters by ``endpos``).
_BODY = {q: re.compile(rf"(?:[^{q}\\\n]++|\\.)*+{q}") for q in "'\"`"}
#: After a literal: the other branch of a ternary, a closing parenthesis, then ``+ '``.
_JOIN = re.compile(r"""\s{0,8}(?::\s{0,8}(?:'[^'\n]{0,200}'|"[^"\n]{0,200}")\s{0,8})?\)?\s{0,8}\+\s{0,8}(['"`])""")
_ESCAPES = re.compile(r"\\(?:u00([0-9a-fA-F]{2})|x([0-9a-fA-F]{2})|(.))")
_END = re.compile(r"""[\s'"`<>\\^{}|]|\$\{""")
_ABSOLUTE = re.compile(r"(?:https?:)?//[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8}(?::\d{1,5})?(?:[/?#]|$)",
                       re.IGNORECASE)
_CODE_PATH = re.compile(r"\.m?js(?:$|[/?#-])|/js/", re.IGNORECASE)
_SCRIPT_WORD = re.compile(r"script", re.IGNORECASE)
#: Extensions of files that are not code (images, fonts, media, documents), lower case.
_NOT_CODE = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff", "woff", "woff2",
                       "ttf", "otf", "eot", "mp3", "mp4", "webm", "ogg", "wav", "m4a", "mov", "pdf", "zip"})


def _unescape(text: str) -> str:
    r"""JavaScript string escapes that matter in URLs.

    >>> _unescape(r"https:\/\/a.example\u002fb\x2Fc")
    'https://a.example/b/c'
    """
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        hexa = m.group(1) or m.group(2)
        return chr(int(hexa, 16)) if hexa else m.group(3)

    return _ESCAPES.sub(one, text)


def _literal(code: str, start: int, quote: str) -> tuple[str, int] | None:
    """The literal whose body starts at ``start``: (body, position after the closing quote)."""
    end = code.find(quote, start, start + MAX_URL_LENGTH + 1)
    if end < 0:
        return None
    body = code[start:end]
    if "\\" not in body:  # the common case, at str.find speed
        return (body, end + 1) if "\n" not in body else None
    m = _BODY[quote].match(code, start, start + MAX_URL_LENGTH + 1)
    if m is None:
        return None
    return code[start : m.end() - 1], m.end()


def _chain(code: str, start: int, quote: str) -> str:
    """The literal at ``start`` joined with the literals added to it (``'a' + 'b'``)."""
    parts: list[str] = []
    size = 0
    for _ in range(MAX_PARTS):
        lit = _literal(code, start, quote)
        if lit is None:
            break
        body, end = lit
        parts.append(body)
        size += len(body)
        if size >= MAX_URL_LENGTH:
            break
        j = _JOIN.match(code, end)
        if j is None:
            break
        start, quote = j.end(), j.group(1)
    return "".join(parts)


def _clean(raw: str) -> str:
    text = _unescape(raw)[:MAX_URL_LENGTH]
    m = _END.search(text)
    return text[: m.start()] if m else text


def _anchors(code: str) -> list[tuple[int, int, str]]:
    """(position of a literal's body, kind, quote) of every anchor, in order of position.

    Kinds: 1 a literal that starts with a scheme or ``//``; 2 a literal assigned to a
    ``src``; 4 a host-and-path literal added to something (a scheme variable); 5 a literal
    that starts with ``://`` (added to a scheme variable, ``p + '://host/a.js'``).
    """
    found: dict[int, tuple[int, str]] = {}
    for n, m in enumerate(_SLASHES.finditer(code)):
        if n >= MAX_ANCHORS:
            break
        j = m.start()
        if code[j - 1 : j] == "\\":
            j -= 1
        low = code[max(0, j - 6) : j].lower()
        if low.endswith("https:"):
            j -= 6
        elif low.endswith("http:"):
            j -= 5
        elif low.endswith(":") and code[j - 2 : j - 1] in _QUOTES and j >= 2:
            # p + '://host/path': the scheme is a variable (http or https).
            found.setdefault(j - 1, (5, code[j - 2]))
            continue
        quote = code[j - 1 : j]
        if quote and quote in _QUOTES:
            found.setdefault(j, (1, quote))
    for rx in (_SRC, _SET_SRC):
        for n, m in enumerate(rx.finditer(code)):
            if n >= MAX_ANCHORS:
                break
            if rx is _SRC and _WORD.match(code, m.start() - 1) and m.start() > 0:
                continue  # "xsrc = ...": another name
            found[m.end()] = (2, m.group(1))
    for n, m in enumerate(_PLUS_HOST.finditer(code)):
        if n >= MAX_ANCHORS:
            break
        found.setdefault(m.end(), (4, m.group(1)))
    return [(pos, kind, quote) for pos, (kind, quote) in sorted(found.items())[:MAX_ANCHORS]]


def loader_urls(code: str, page_url: str = "") -> list[str]:
    """Script URLs the inline ``code`` builds, absolute, in order of appearance, deduplicated.

    >>> loader_urls("var s=d.createElement('script'); s.src='https://' + 'cdn.example.com/t.js?id='+id;")
    ['https://cdn.example.com/t.js?id=']
    >>> loader_urls("x = ('https:' == p ? 'https://ssl' : 'http://www') + '.example.com/ga.js'")
    ['https://ssl.example.com/ga.js', 'http://www.example.com/ga.js']
    """
    if not code:
        return []
    out: list[str] = []
    seen: set[str] = set()
    script_words: list[int] | None | bool = None  # where the word "script" starts, found once

    def after_script(pos: int) -> bool:
        """Whether the word ``script`` ends within CONTEXT characters before ``pos``."""
        nonlocal script_words
        if script_words is None:
            script_words = _script_words(code)
        lo = max(0, pos - CONTEXT)
        if script_words is False:
            return _SCRIPT_WORD.search(code, lo, pos) is not None
        assert not isinstance(script_words, bool)
        return _word_between(script_words, lo, pos - len("script"))

    for pos, kind, quote in _anchors(code):
        if len(out) >= MAX_LOADER_URLS:
            break
        raw = _chain(code, pos, quote)
        if kind != 2 and "j" not in raw and "J" not in raw and "\\" not in raw and not after_script(pos):
            continue  # no code path can be in it (no "j", no escape), and no "script" before it
        url = _clean(raw)
        if not url:
            continue
        if kind == 4:
            url = "https://" + url
        elif kind == 5:
            url = "https" + url
        url = _absolute_url(url, page_url, relative_ok=kind == 2)
        if not url or url in seen:
            continue
        path = url.split("#", 1)[0].split("?", 1)[0]
        dot = path.rfind(".")
        if dot >= 0 and path[dot + 1 :].lower() in _NOT_CODE:
            continue
        if kind != 2 and not _CODE_PATH.search(url) and not after_script(pos):
            continue
        seen.add(url)
        out.append(url)
    return out


def _script_words(code: str) -> list[int] | bool:
    """Where ``script`` starts in ``code`` (any case), in order; False when the code is not
    ASCII (case folding beyond ASCII is left to the regular expression).

    >>> _script_words("a Script; SCRIPT"), _script_words("\u017fcript")
    ([2, 10], False)
    """
    if not code.isascii():
        return False
    low = code.lower()
    out: list[int] = []
    i = low.find("script")
    while i >= 0:
        out.append(i)
        i = low.find("script", i + 6)
    return out


def _word_between(starts: list[int], lo: int, hi: int) -> bool:
    """Whether one of the sorted ``starts`` lies in ``[lo, hi]``.

    >>> _word_between([3, 40], 10, 39), _word_between([3, 40], 10, 40)
    (False, True)
    """
    i = bisect_left(starts, lo)
    return i < len(starts) and starts[i] <= hi


def _absolute_url(url: str, page_url: str, *, relative_ok: bool) -> str:
    """``url`` made absolute, or "" when it is no usable script URL.

    >>> _absolute_url("//cdn.example/a.js", "", relative_ok=False)
    'https://cdn.example/a.js'
    >>> _absolute_url("/js/a.js", "http://site.example/x/", relative_ok=True)
    'http://site.example/js/a.js'
    >>> _absolute_url("data:text/javascript,1", "", relative_ok=True)
    ''
    """
    if _ABSOLUTE.match(url):
        if url.startswith("//"):
            scheme = "http:" if page_url.startswith("http:") else "https:"
            return scheme + url
        return url
    if not relative_ok or ":" in url.split("/", 1)[0] or url.startswith("//"):
        return ""
    if not (url.startswith(("/", "./", "../")) or ".js" in url.lower()):
        return ""
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", page_url)
    if not m:
        return url if url.startswith("/") else ""
    if url.startswith("/"):
        return m.group(0) + url
    from urllib.parse import urljoin

    try:
        return urljoin(page_url, url)
    except ValueError:
        return ""


#: Files of one combined script URL looked at.
MAX_COMBINED = 50
_MINIFY_F = re.compile(r"[?&]f=([^&#]+)")


def combined_parts(url: str) -> list[str]:
    """The files a combining URL serves in one response, each as its own absolute URL.

    Shapes: ``dir/??a.js,b.js`` (nginx concat, Tengine), ``/min/?f=a.js,b.js`` (Minify, paths
    from the site's root), and ``dir/a.js;b.js`` or ``dir/a.js,b.js`` (lists in the path).
    A URL that combines nothing gives nothing.

    >>> combined_parts("https://s.example/min/?f=wp-includes/js/a.js,wp-content/plugins/x/b.js")
    ['https://s.example/wp-includes/js/a.js', 'https://s.example/wp-content/plugins/x/b.js']
    >>> combined_parts("https://s.example/js/??a.js,lib/b.js?v=1")
    ['https://s.example/js/a.js', 'https://s.example/js/lib/b.js']
    >>> combined_parts("https://s.example/v1/_bundle.min.js;jquery.elastic.js;modernizr.js")
    ['https://s.example/v1/_bundle.min.js', 'https://s.example/v1/jquery.elastic.js', 'https://s.example/v1/modernizr.js']
    >>> combined_parts("https://s.example/js/app.js?v=1,2"), combined_parts("https://s.example/a.js")
    ([], [])
    """
    if "," not in url and ";" not in url:
        return []
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(/[^?#]*)?(\?[^#]*)?", url)
    if m is None:
        return []
    origin, path, query = m.group(1), m.group(2) or "/", m.group(3) or ""
    if "??" in url:
        base, _, rest = url.partition("??")
        parts = rest.split("?", 1)[0].split("#", 1)[0].split(",")
        base = base if base.endswith("/") else base + "/"
    elif (f := _MINIFY_F.search(query)) is not None and "," in f.group(1):
        base, parts = origin + "/", f.group(1).split(",")
    else:
        head, _, last = path.rpartition("/")
        sep = ";" if ";" in last else ","
        if sep not in last:
            return []
        parts = last.split(sep)
        if sum(1 for p in parts if ".js" in p) < 2:
            return []
        base = origin + head + "/"
    out: list[str] = []
    for part in parts[:MAX_COMBINED]:
        part = part.strip().lstrip("/")
        if part and ".." not in part and ":" not in part:
            out.append(base + part)
    return out
