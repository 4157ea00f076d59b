"""JavaScript globals that inline code defines or uses (the ``inline_js`` evidence source).

The library's ``js`` rules name globals a technology defines (``_paq``, ``googletag``,
``_sf_async_config``); the reference engine checks them in a browser, which a static crawl
has not.  But a snippet that sets up the global is in the page's own inline code
(``var _paq = window._paq || [];``, ``window.googletag = window.googletag || {cmd: []}``), and
so is code that calls it (``jQuery(document).ready(...)``).  This module finds those uses,
in general, with how much a use proves depending on the name (see :func:`name_strength`):

* a *distinctive* name (an ``_``, ``$`` or digit in it, camelCase, capitals only of four or
  more letters, or a dotted path such as ``googletag.pubads``) counts when code defines it
  (``var N =``, ``window.N =``, ``window['N'] =``), calls it (``N(``) or reads a member of it
  (``N.x``);
* a name of five or more letters that *is the technology's name* (``moment`` for Moment.js,
  ``Cufon``, ``Backbone``) counts when code reads a member of it (``moment.locale(``);
* any other name (a plain word: ``search``, ``analytics``, ``app``) counts only in the
  defensive definition that vendor snippets write and a page's own variables do not:
  ``N = N || ...``, ``N = window.N || ...``, ``window.N = window.N || ...``.

A use inside a string or after another object's dot (``foo.ga(``) does not count, nor does
``typeof N`` alone, an object key (``{N: 1}``) or a ``js`` rule whose value must match a
pattern (the value is not known without running the code).  Cost: the names are prefiltered
in one pass over the inline code; each candidate is checked at most at
:data:`MAX_OCCURRENCES` places.
"""

from __future__ import annotations

import functools
import re

#: Places of one name looked at per page.
MAX_OCCURRENCES = 32
DISTINCTIVE, NAMED, PLAIN = 2, 1, 0
_IDENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_NAME = re.compile(r"[A-Za-z_$][\w$]{0,80}(?:\.[A-Za-z_$][\w$]{0,80}){0,4}")
#: js-rule values that accept any value (an exists check, or a version capture).
_ANY_VALUE = re.compile(r"\^?(?:\((?:\[\\d\.?\]\+|\[\\d\\\.\]\+|\[0-9\.\]\+|\.\+|\.\*|\[\^\]\]\*)\)\$?)?")
_WINDOW = ("window.", "self.", "globalThis.", "top.", "parent.")


def accepts_any_value(regex: str) -> bool:
    """Whether a ``js`` rule's regex accepts whatever value the global has.

    >>> accepts_any_value(""), accepts_any_value(r"([\\d.]+)"), accepts_any_value(r"^2\\.")
    (True, True, False)
    """
    return _ANY_VALUE.fullmatch(regex) is not None


def name_strength(name: str, technology_key: str, key_of: object = None) -> int:
    """How a global's name proves its technology: DISTINCTIVE, NAMED (the technology's own
    name, folded as ``technology_key``) or PLAIN.

    >>> [name_strength(n, "x") for n in ("_paq", "jQuery", "NREUM", "googletag.pubads", "search", "Process")]
    [2, 2, 2, 2, 0, 0]
    >>> name_strength("moment", "moment"), name_strength("head", "head")
    (1, 0)
    """
    if "." in name or re.search(r"[_$\d]|[a-z][A-Z]", name) or (name.isupper() and len(name) >= 4):
        return DISTINCTIVE
    if len(name) >= 5 and re.sub(r"[^a-z0-9]", "", name.lower()) == technology_key:
        return NAMED
    return PLAIN


#: Names of the browser's own objects: every page has them.
_BROWSER = frozenset({"window", "document", "self", "top", "parent", "globalThis", "navigator", "location",
                      "console", "history", "screen", "localStorage", "sessionStorage"})


def usable_name(name: str) -> bool:
    """Whether a ``js`` key is a plain global name or dotted path (not ``a['b']``, ``$`` or
    the browser's own ``window``).

    >>> usable_name("_paq"), usable_name("a.b"), usable_name("$"), usable_name("x['y']"), usable_name("window")
    (True, True, False, False, False)
    """
    return len(name) >= 2 and name not in _BROWSER and _NAME.fullmatch(name) is not None


def _skip_space(code: str, i: int) -> int:
    n = len(code)
    while i < n and code[i] in " \t\r\n":
        i += 1
    return i


def _defensive(code: str, name: str, after: int) -> bool:
    """Whether ``= N ||`` or ``= window.N ||`` follows position ``after`` (just past ``N``)."""
    i = _skip_space(code, after)
    if code[i : i + 1] != "=" or code[i + 1 : i + 2] == "=":
        return False
    i = _skip_space(code, i + 1)
    for prefix in ("", *_WINDOW):
        if code.startswith(prefix + name, i):
            j = i + len(prefix) + len(name)
            if code[j : j + 1] in _IDENT:
                continue
            return code.startswith("||", _skip_space(code, j))
    return False


def global_use(code: str, name: str, strength: int) -> str:
    """The text of the first place ``code`` defines or uses global ``name`` in a way that
    counts for a name of this ``strength`` ("" when there is none).

    >>> global_use("var _paq = window._paq || [];", "_paq", DISTINCTIVE)
    '_paq = window._paq ||'
    >>> global_use("window.googletag = window.googletag || {cmd: []};", "googletag", PLAIN)
    'window.googletag = window.googletag ||'
    >>> global_use("var googletag = {}; googletag.cmd.push(f)", "googletag", PLAIN)
    ''
    >>> global_use("x.jQuery(1); s = 'jQuery('; if (typeof jQuery == 'u') {}", "jQuery", DISTINCTIVE)
    ''
    >>> global_use("moment.locale('en')", "moment", NAMED), global_use("{moment: 1}", "moment", NAMED)
    ('moment.', '')
    """
    if strength == PLAIN:
        for k, m in enumerate(_defensive_rx(name).finditer(code)):
            if k >= MAX_OCCURRENCES:
                break
            pos = m.start()
            before = code[pos - 1 : pos]
            if not before or before not in _IDENT | {"."}:
                return m.group(0)
            if before == "." and any(code.startswith(w, pos - len(w)) for w in _WINDOW):
                return code[code.rfind("window", 0, pos) if code.startswith("window.", pos - 7) else pos : m.end()]
        return ""
    n = 0
    for k, m in enumerate(_occurrences(name).finditer(code)):
        pos = m.start()
        if pos and code[pos - 1] in _IDENT:
            if k >= 8 * MAX_OCCURRENCES:
                break
            continue  # the end of a longer identifier
        n += 1
        if n > MAX_OCCURRENCES:
            break
        found = _use_at(code, name, pos, m.end(), strength)
        if found:
            return found
    return ""


@functools.lru_cache(maxsize=4096)
def _defensive_rx(name: str) -> re.Pattern[str]:
    """``N = N ||`` and ``N = window.N ||`` (a literal first: memchr speed)."""
    n = re.escape(name)
    return re.compile(rf"{n}\s{{0,8}}=\s{{0,8}}(?:(?:window|self|globalThis|top|parent)\.)?{n}\s{{0,8}}\|\|")


@functools.lru_cache(maxsize=4096)
def _occurrences(name: str) -> re.Pattern[str]:
    """The name where it is a whole identifier (not inside a longer one)."""
    # A literal first, so the search runs at memchr speed; the left boundary is checked after.
    return re.compile(rf"{re.escape(name)}(?![\w$])")


_DECLARE = re.compile(r"(?:^|[\s;,({])((?:var|let|const)\s+)$")


def _use_at(code: str, name: str, pos: int, end: int, strength: int) -> str:
    """The counted use of ``name`` at ``code[pos:end]``, or ""."""
    before = code[pos - 1 : pos]
    start = pos
    qualified = False  # written window.N or window['N']
    if before == ".":
        window = next((w for w in _WINDOW if code.startswith(w, pos - len(w))), "")
        if not window or code[pos - len(window) - 1 : pos - len(window)] in _IDENT | {"."}:
            return ""
        start, qualified = pos - len(window), True
    elif before in ("'", '"'):
        head = code[max(0, pos - 20) : pos - 1].rstrip()
        if code[end : end + 1] != before or not head.endswith(("window[", "self[")):
            return ""
        j = _skip_space(code, end + 1)
        if code[j : j + 1] != "]":
            return ""
        start, end, qualified = code.rfind("[", 0, pos) - len("window"), j + 1, True
    elif before and before in _IDENT:
        return ""
    if _defensive(code, name, end):
        return code[start : code.find("||", end) + 2]
    if strength == PLAIN:
        return ""
    i = _skip_space(code, end)
    nxt = code[i : i + 1]
    member = nxt == "." and code[i + 1 : i + 2] in _IDENT
    if strength == NAMED:
        # A technology's own name may be an everyday word (``convert``, ``head``): only reading
        # a member of it (``moment.locale(``, ``Cufon.set(``) counts, and only for 5+ letters.
        return code[start : i + 1] if member and len(name) >= 5 else ""
    if not qualified and (nxt == "(" or nxt == "[" or member):
        return code[start : i + 1]
    if nxt == "=" and code[i + 1 : i + 2] != "=":
        declared = _DECLARE.search(code, max(0, start - 12), start)
        if declared:
            return code[declared.start(1) : i + 1]
        if qualified:
            return code[start : i + 1]
    if qualified and nxt in (".", "("):
        return code[start : i + 1]
    return ""
