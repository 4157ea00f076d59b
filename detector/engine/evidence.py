"""Rules of evidence of the default ("detector") mode: what a match proves, beyond the reference.

The reference engine (and the engine's "wappalyzer" mode) counts every pattern match alike.
The default mode adds the rules below; each is general (no technology named) and is
described in README.md, "Evidence rules".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

#: Percent of a scriptSrc rule's confidence that a URL built by inline code carries (the
#: ``script_loader`` source).  The URL is in the code that would load the script, not a
#: script the page was seen to load: the snippet may sit behind a consent check or never
#: run.  So it weighs less than a ``<script src>``, but alone still makes a detection at
#: confidence 80 (a rule written at 100), above any usual reporting threshold.
LOADER_CONFIDENCE = 80


def loader_confidence(rule_confidence: int) -> int:
    """The confidence of a script_loader match of a rule written with ``rule_confidence``.

    >>> loader_confidence(100), loader_confidence(50)
    (80, 40)
    """
    return rule_confidence * LOADER_CONFIDENCE // 100


# ---------------------------------------------------------------------- weak evidence
#: ``<link rel>`` values that only announce a possible request: resource hints.
HINT_RELS = frozenset({"preconnect", "dns-prefetch", "preload", "prefetch", "modulepreload", "prerender"})
#: Why a hit is weak (it counts only alongside a strong hit of the same technology).
WEAK_HINT = "resource hint"
WEAK_COMMENT = "snippet comment"
WEAK_POLICY = "policy allowance"
WEAK_BUCKET = "another party's bucket"
#: Response headers whose values list what a page *may* load or connect to (a security
#: policy's allowances), not what it does: a match in them is weak, like a resource hint.
POLICY_HEADERS = frozenset({"content-security-policy", "content-security-policy-report-only"})
_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
#: How far back a hit looks for the start of the tag or comment it sits in.
_LOOKBACK = 4096
#: Occurrences of a matched text looked at before it is taken as strong.
_MAX_OCCURRENCES = 16


def is_hint_rel(rel: str | None) -> bool:
    """Whether a ``rel`` attribute value names a resource hint.

    >>> is_hint_rel("preconnect"), is_hint_rel("dns-prefetch preconnect"), is_hint_rel("stylesheet")
    (True, True, False)
    """
    return bool(rel) and any(word in HINT_RELS for word in (rel or "").lower().split())


def tag_rel(tag: str) -> str | None:
    """The ``rel`` attribute value of a tag's text, or None.

    >>> tag_rel('<link rel="dns-prefetch" href="//x.example">'), tag_rel("<link href=a.css>")
    ('dns-prefetch', None)
    """
    m = _REL.search(tag)
    return (m.group(1) or m.group(2) or m.group(3)) if m else None


def _in_hint_link(html: str, pos: int) -> bool:
    """Whether position ``pos`` of ``html`` lies inside a ``<link rel=(hint)>`` tag."""
    lt = html.rfind("<", max(0, pos - _LOOKBACK), pos + 1)
    if lt < 0 or html[lt + 1 : lt + 5].lower() != "link":
        return False
    gt = html.find(">", lt)
    if gt < pos:
        return False
    m = _REL.search(html, lt, gt)
    return m is not None and is_hint_rel(m.group(1) or m.group(2) or m.group(3))


#: A comment that labels a pasted snippet: it opens or closes a block ("Begin ...",
#: "Start of ...", "End ...") or names a piece of code ("... Code", "... Snippet", "... Tag").
_SNIPPET_LABEL = re.compile(
    r"<!--\s{0,20}(?:(?:begin|start|end)\b|[^>]{0,200}?\b(?:code|snippet|script|tag)\s{0,20}-->)", re.IGNORECASE)


def _in_comment(html: str, start: int, end: int) -> bool:
    """Whether ``html[start:end]`` lies inside an HTML comment that labels a pasted snippet.

    Comments that software writes about the page it generated ("optimized with X 20.1",
    "Cached by X") stay strong evidence: the software ran.  A snippet's label is not: the
    snippet's code is the evidence, and a label left without its code proves nothing.
    IE conditional comments (``<!--[if IE]>``) hold real markup and are not comments here.
    """
    open_ = html.rfind("<!--", 0, start + 4)
    if open_ > start:
        open_ = html.rfind("<!--", 0, start)
    if open_ < 0 or html.startswith("<!--[if", open_):
        return False
    close = html.find("-->", open_ + 4)
    if close >= 0 and close + 3 < end:
        return False
    return _SNIPPET_LABEL.match(html, open_, close + 3 if close >= 0 else len(html)) is not None


def html_weakness(html: str, matched: str) -> str:
    """Why an ``html`` match is weak ("" when it is not): every occurrence of the matched
    text is inside a resource-hint ``<link>`` or inside a snippet's label comment.

    >>> html_weakness('<link rel="preconnect" href="https://fonts.example">', 'fonts.example')
    'resource hint'
    >>> html_weakness('<!-- Begin Vendor Signup Form --><p>x</p>', '<!-- Begin Vendor Signup Form -->')
    'snippet comment'
    >>> html_weakness('<!-- This page is cached by Vendor 2.1 -->', 'cached by Vendor')
    ''
    >>> html_weakness('<!-- Vendor --><form class="vendor-form">', 'vendor-form')
    ''
    """
    def reason(pos: int) -> str:
        if _in_hint_link(html, pos):
            return WEAK_HINT
        return WEAK_COMMENT if _in_comment(html, pos, pos + len(matched)) else ""

    reasons = _weak_everywhere(html, matched, reason)
    return WEAK_HINT if WEAK_HINT in reasons else WEAK_COMMENT if reasons else ""


def _weak_everywhere(text: str, matched: str, reason: Callable[[int], str]) -> set[str]:
    """The reasons ``reason`` gives for the occurrences of ``matched`` in ``text`` when every
    occurrence has one; an empty set when one has none, when ``matched`` is empty or does not
    occur, or when it occurs more than :data:`_MAX_OCCURRENCES` times (too many to check:
    the match is taken as strong).

    The walk stops at the first occurrence without a reason, so a strong match (the common
    case) costs one search up to its first occurrence, not a pass over the whole text.

    >>> sorted(_weak_everywhere("a-b-a", "a", lambda pos: "weak")), _weak_everywhere("a-b-a", "a", lambda pos: "")
    (['weak'], set())
    >>> _weak_everywhere("x", "", lambda pos: "weak"), _weak_everywhere("a" * 20, "a", lambda pos: "weak")
    (set(), set())
    """
    reasons: set[str] = set()
    if not matched:
        return reasons
    n = 0
    pos = text.find(matched)
    while pos >= 0:
        if n == _MAX_OCCURRENCES:
            return set()
        n += 1
        why = reason(pos)
        if not why:
            return set()
        reasons.add(why)
        pos = text.find(matched, pos + 1)
    return reasons


# ---------------------------------------------------------------------- anchor hrefs
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_ANCHOR_HREF = re.compile(r"""\[\s*href\s*\*=\s*(?:"([^"]*)"|'([^']*)'|([^\s\]]+))\s*\]""")


def top_level(selector: str, chars: str) -> list[int]:
    """Positions of ``chars`` in a CSS selector outside quotes, brackets and parentheses.

    >>> top_level("a[href*='x,y'], b > c:not(d, e)", ",>")
    [14, 18]
    """
    found: list[int] = []
    depth, quote = 0, ""
    for i, c in enumerate(selector):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c in chars:
            found.append(i)
    return found


def split_selector(selector: str) -> list[str]:
    """A selector list's branches (split on top-level commas), stripped, empty ones dropped."""
    cuts = [-1, *top_level(selector, ","), len(selector)]
    parts = (selector[a + 1 : b].strip() for a, b in itertools.pairwise(cuts))
    return [p for p in parts if p]


def _last_compound(branch: str) -> str:
    """The rightmost compound selector of a branch (the element it selects)."""
    cuts = top_level(branch, " >+~")
    return branch[cuts[-1] + 1 :].strip() if cuts else branch.strip()


def anchor_substrings(branches: list[str]) -> tuple[tuple[str, ...], ...] | None:
    """For a selector's branches: the ``href*=`` values of each branch that selects ``<a>``
    elements by a substring of their href, or None when some branch selects anchors
    without one (then every anchor it finds counts as it is).

    >>> anchor_substrings(["a[href*='/cart']", "div.cart"])
    (('/cart',),)
    >>> anchor_substrings(["a.cart"]) is None, anchor_substrings(["div a[href*='x'][target]"])
    (True, (('x',),))
    """
    out: list[tuple[str, ...]] = []
    for branch in branches:
        compound = _last_compound(branch)
        tag = re.match(r"[A-Za-z*][A-Za-z0-9-]*", compound)
        name = tag.group(0).lower() if tag else "*"
        if name not in ("a", "*"):
            continue
        values = tuple(m.group(1) or m.group(2) or m.group(3) or "" for m in _ANCHOR_HREF.finditer(compound))
        values = tuple(v for v in values if v)
        if not values:
            if name == "a":
                return None
            continue
        out.append(values)
    return tuple(out) if out else None


def on_segment_boundary(href: str, value: str) -> bool:
    """Whether ``value`` occurs in ``href`` where a path segment (or host label) starts and ends.

    An end of ``value`` that is itself a separator (``/``, ``.``, ``?``...) needs nothing more.

    >>> [on_segment_boundary(h, "/cart") for h in ("/cart", "/cart/", "/cart?x=1", "/cartoons/", "/cart-page")]
    [True, True, True, False, False]
    >>> on_segment_boundary("https://x.example/shop/cart.php", "/cart"), on_segment_boundary("/a", "")
    (True, True)
    """
    if not value:
        return True
    need_left = value[0] in _WORD_CHARS
    need_right = value[-1] in _WORD_CHARS
    pos = href.find(value)
    while pos >= 0:
        end = pos + len(value)
        left = not need_left or pos == 0 or href[pos - 1] not in _WORD_CHARS
        right = not need_right or end == len(href) or href[end] not in _WORD_CHARS
        if left and right:
            return True
        pos = href.find(value, pos + 1)
    return False


def anchor_counts(href: str, branches: tuple[tuple[str, ...], ...]) -> bool:
    """Whether an ``<a href>`` found by a substring selector counts: some branch's values all
    occur in it on segment boundaries."""
    return any(all(on_segment_boundary(href, v) for v in values) for values in branches)


# ---------------------------------------------------------------------- short words in text
_SHORT_WORD = re.compile(r"(?:\\b|\^)?(?:\(\?<!-\))?(?:\\b)?\\?([A-Za-z0-9]{1,4})(?:\\b|\$)?")


@dataclass(frozen=True, slots=True)
class ShortWord:
    """A word matched between Unicode word boundaries (``(?<!\\w)WORD(?!\\w)``), searched
    for from the word itself: a pattern that starts with a lookbehind is tried at every
    position of the text, one that starts with a literal is found at memchr speed."""

    find: re.Pattern[str]
    whole: re.Pattern[str]

    def search(self, text: str) -> re.Match[str] | None:
        """The first occurrence of the word that stands alone, as ``whole.search`` finds it.

        An occurrence skipped by the non-overlapping walk starts inside an earlier one, after
        a word character, so it could not stand alone: the first found is the first there is.
        """
        for m in self.find.finditer(text):
            found = self.whole.match(text, m.start())
            if found is not None:
                return found
        return None


def short_word_regex(regex: str) -> ShortWord | None:
    """For a ``text`` pattern that is one word of 4 characters or fewer, the matcher the
    default mode uses: the word between Unicode word boundaries, in capitals only when the
    pattern writes it in capitals (an acronym: ``UPS`` is not the English "ups").

    >>> rx = short_word_regex(r"\\b(?<!-)UPS\\b")
    >>> [bool(rx.search(t)) for t in ("Ship with UPS.", "user groups", "ups and downs", "GrüUPS")]
    [True, False, False, False]
    >>> short_word_regex(r"\\bRoyal Mail\\b") is None, bool(short_word_regex(r"\\APC\\b").search("GAPC"))
    (True, False)
    >>> short_word_regex(r"\\bdhl\\b").search("dhlx DHL-Express").group(0)
    'DHL'
    """
    m = _SHORT_WORD.fullmatch(regex)
    if m is None:
        return None
    word = re.escape(m.group(1))
    flags = 0 if m.group(1).isupper() else re.IGNORECASE
    return ShortWord(re.compile(rf"{word}(?!\w)", flags), re.compile(rf"(?<!\w){word}(?!\w)", flags))


# ---------------------------------------------------------------------- refined rules
#: Library rules the default mode runs in a narrower form: (technology, kind, pattern as
#: written) -> the pattern run instead.  Each names a shared loader whose product the URL
#: itself says.  A rule that is not in the library is not used.
#:
#: * gtag.js (``googletagmanager.com/gtag/js?id=...``) loads Google Analytics for a ``G-``
#:   or ``UA-`` id, but Google Ads (``AW-``) and Floodlight (``DC-``) too: it is Google
#:   Analytics evidence only with an Analytics id.
REFINED_RULES: dict[tuple[str, str, str], str] = {
    ("Google Analytics", "scriptSrc", r"googletagmanager\.com/gtag/js"):
        r"googletagmanager\.com/gtag/js\?(?:[^#]*&)?id=(?:G|UA)-",
}


# ---------------------------------------------------------------------- share links
#: Query parameters that carry the text or page a share button passes on.
_SHARE_PARAMS = frozenset({"text", "url", "u", "body", "title", "summary", "status", "media"})
#: Path words of share and intent endpoints (``/sharer/sharer.php``, ``/intent/tweet``, ``/shareArticle``).
_SHARE_PATH = re.compile(r"/(?:sharer|share|shareArticle|intent|pin/create)(?:[/.?]|$)", re.IGNORECASE)
_RECIPIENT = re.compile(r"\d{6}")


def is_share_link(href: str) -> bool:
    """Whether an anchor's href is a share button's (it passes the page on to another service)
    rather than a link to the site's own account or chat on it.

    A share endpoint's path (``/sharer``, ``/share``, ``/intent/``, ``/shareArticle``,
    ``/pin/create``), or a query with a text or URL to pass on (``text=``, ``url=``, ``u=``...)
    and no recipient (a ``phone=`` or a phone number in the path).

    >>> [is_share_link(h) for h in ("https://wa.me/?text=Hi", "https://api.whatsapp.com/send?p&amp;text=x",
    ...  "https://www.facebook.com/sharer/sharer.php?u=x", "https://twitter.com/intent/tweet?text=x")]
    [True, True, True, True]
    >>> [is_share_link(h) for h in ("https://wa.me/4915112345678?text=Hallo", "https://api.whatsapp.com/send?phone=491511&text=x",
    ...  "https://www.facebook.com/acme", "https://twitter.com/acme")]
    [False, False, False, False]
    """
    base, _, query = href.replace("&amp;", "&").partition("?")
    path = base.split("//", 1)[-1].partition("/")[2]
    if _SHARE_PATH.search("/" + path):
        return True
    if not query:
        return False
    keys = {part.split("=", 1)[0].lower() for part in query.split("&")}
    return bool(keys & _SHARE_PARAMS) and "phone" not in keys and not _RECIPIENT.search(path)


# ---------------------------------------------------------------------- script file names
#: Everyday words of front-end code that a few libraries are also named after.  A file
#: called after one of them is the library only in the library's own distribution name.
GENERIC_FILE_WORDS = frozenset({"bootstrap", "loader", "lightbox", "epoch", "require", "main", "app", "init",
                                "core", "common", "config", "vendor", "bundle", "polyfill", "polyfills"})
_LEAD_WORD = re.compile(r"[a-z]+", re.IGNORECASE)


def script_name_weakness(regex: str, src: str, matched: str) -> bool:
    """Whether a ``scriptSrc`` match does not name the script it is in.

    * The pattern's leading word is glued to the end of another word: ``sp\\.js`` in
      ``tanxssp.js`` (a pattern that starts with a letter or digit must start a word).
    * The match starts with an everyday word of front-end code (:data:`GENERIC_FILE_WORDS`:
      ``bootstrap``, ``loader``, ``lightbox``...) and the script's file name is not that
      word as a library distributes it (in lower case, maybe with a version, ``.bundle``,
      ``.min``): ``bootstrap.min.js`` and ``bootstrap-4.3.1.js`` are Bootstrap;
      ``iomm/latest/bootstrap/loader.js``, ``gdpr-cmp-bootstrap.js`` and Ensighten's
      ``Bootstrap.js`` are loaders.

    >>> script_name_weakness(r"sp\\.js", "https://a.example/t/tanxssp.js?_v=1", "sp.js")
    True
    >>> script_name_weakness(r"sp\\.js", "https://a.example/sp.js", "sp.js")
    False
    >>> rx = r"bootstrap(?:[^>]*?)(?:\\.min)?\\.js"
    >>> [script_name_weakness(rx, u, u[u.lower().index("bootstrap"):]) for u in (
    ...     "//x.example/iomm/bootstrap/loader.js", "//x.example/js/gdpr-cmp-bootstrap.js",
    ...     "//nexus.example/Bootstrap.js", "/js/bootstrap/3.3.7/bootstrap.min.js", "/js/bootstrap-4.3.1.bundle.min.js?v=2")]
    [True, True, True, False, False]
    """
    if not matched:
        return False
    if regex[:1].isalnum():
        pos = src.find(matched)
        boundary = False
        n = 0
        while pos >= 0 and n < 16:
            if pos == 0 or not src[pos - 1].isalnum():
                boundary = True
                break
            pos = src.find(matched, pos + 1)
            n += 1
        if not boundary:
            return True
    lead = _LEAD_WORD.match(matched)
    word = lead.group(0).lower() if lead else ""
    if word in GENERIC_FILE_WORDS:
        name = src.split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1]
        if not re.fullmatch(rf"{word}(?:[.-]v?\d[\w.-]*?)?(?:\.bundle)?(?:\.min)?\.m?js", name):
            return True
    return False


# ---------------------------------------------------------------------- links to other sites
def site_of(url: str) -> str:
    """The site (registrable domain, roughly: the last two labels, three under a two-letter
    country code with a short second level such as ``co.uk``) of an absolute URL's host, or "".

    >>> site_of("https://subs.theverge.com/x"), site_of("//www.bbc.co.uk/"), site_of("/checkout")
    ('theverge.com', 'bbc.co.uk', '')
    """
    m = re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#:]+)", url.strip())
    if not m:
        return ""
    labels = m.group(1).lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


#: An Amazon S3 URL: the bucket as a virtual host (``BUCKET.s3.REGION.amazonaws.com``) or
#: the first path segment of a path-style URL (``s3.amazonaws.com/BUCKET/key``).
_S3_URL = re.compile(
    r"(?:^|//)(?:([a-z0-9][a-z0-9.-]{0,62})\.)?s3(?:[.-][a-z0-9-]{1,30}){0,3}\.amazonaws\.com(?::\d{1,5})?(/[^?#]{0,1024})?",
    re.IGNORECASE)


def foreign_bucket(url: str, matched: str, page_url: str) -> bool:
    """Whether a match on an object-storage host (``s3...amazonaws.com``) names another party's
    bucket: one named after a domain (``downloads.mailchimp.com``, ``prod.iqdcontroller.iqdigital``)
    none of whose labels is the page's site name.  A vendor serving its script from its own
    bucket does not put the site on S3; an opaquely named bucket
    (``cw-production-assetsbucket-8j84s.s3.amazonaws.com``) says nothing of its owner and counts.

    >>> foreign_bucket("https://s3.amazonaws.com/downloads.mailchimp.com/js/mc-validate.js", "s3.amazonaws.com/", "http://money.cnn.com/")
    True
    >>> foreign_bucket("https://assets.cnn.com.s3.amazonaws.com/a.js", "s3.amazonaws.com/", "http://money.cnn.com/")
    False
    >>> foreign_bucket("https://cw-assets-8j84s.s3.amazonaws.com/a.js", "s3.amazonaws.com/", "https://caktusgroup.com/")
    False
    """
    if "amazonaws.com" not in matched.lower():
        return False  # the match is about the file, not the storage host
    m = _S3_URL.search(url)
    own = site_of(page_url).split(".", 1)[0]
    if m is None or not own:
        return False
    bucket = m.group(1) or (m.group(2) or "/").lstrip("/").split("/", 1)[0]
    return "." in bucket and own not in bucket.lower().split(".")


def path_rule_elsewhere(href: str, branches: tuple[tuple[str, ...], ...], page_url: str) -> bool:
    """Whether an anchor found only by path substrings (``a[href*='/checkout']``) links to
    another site: a path rule says what the site itself serves, and a donation service's
    ``/checkout`` is not the site's shop.

    >>> b = (("/checkout",),)
    >>> path_rule_elsewhere("https://www.classy.org/give/1/#!/donation/checkout?x", b, "https://creativecommons.org/")
    True
    >>> path_rule_elsewhere("/checkout", b, "https://shop.example/"), path_rule_elsewhere("https://www.shop.example/checkout", b, "https://shop.example/a")
    (False, False)
    """
    if not all(v.startswith("/") for values in branches for v in values):
        return False
    target, own = site_of(href), site_of(page_url)
    return bool(target) and bool(own) and target != own


# ------------------------------------------------------------- commented-out code
#: Why a ``scripts`` hit is weak: every occurrence sits in a JavaScript comment.
WEAK_CODE_COMMENT = "commented-out code"
#: Characters of a line looked at before a hit to tell a ``//`` comment (a longer prefix,
#: as in minified code, which keeps no comments, is taken as code).
_LINE_LOOKBACK = 2000
#: String literals and ``//`` on one line: a ``//`` outside every literal opens a comment.
_LINE_TOKENS = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\\n]|\\.)*`|//""")


def _line_comment_before(code: str, line_start: int, pos: int) -> bool:
    """Whether a ``//`` outside string literals occurs on the line before ``pos`` (the
    line is read past ``pos`` so that a literal holding ``pos`` is read whole)."""
    if pos - line_start > _LINE_LOOKBACK or code.find("//", line_start, pos) < 0:
        return False
    line_end = code.find("\n", pos)
    end = min(line_end if line_end >= 0 else len(code), pos + _LINE_LOOKBACK)
    for m in _LINE_TOKENS.finditer(code, line_start, end):
        if m.start() >= pos:
            return False
        if m.group(0) == "//":
            return True
    return False


def in_js_comment(code: str, pos: int) -> bool:
    """Whether position ``pos`` of inline JavaScript ``code`` lies inside a comment.

    A ``//`` comment is told by scanning the line before ``pos`` for string literals; a
    ``/* */`` comment by the last ``/*`` before ``pos`` having no ``*/`` after it (and not
    sitting in a literal of its line).  Regular-expression literals are not told apart from
    code, so a ``//`` or ``/*`` inside one may be taken for a comment: the rule is then weak
    where it should be strong, never the other way round.

    >>> in_js_comment("var a = 1; // ga('send', 'pageview')", 20)
    True
    >>> in_js_comment("var u = 'https://x.example/a.js'; ga('send')", 35)
    False
    >>> in_js_comment("window.DSN = 'https://0123@sentry.example/10';", 23)
    False
    >>> in_js_comment("/* ga('send');\\n */ go();", 5), in_js_comment("/* x */ ga('send');", 9)
    (True, False)
    """
    line_start = code.rfind("\n", 0, pos) + 1
    if _line_comment_before(code, line_start, pos):
        return True
    opened = code.rfind("/*", 0, pos)
    if opened < 0 or code.find("*/", opened + 2, pos) >= 0:
        return False
    open_line = code.rfind("\n", 0, opened) + 1
    if opened - open_line > _LINE_LOOKBACK:
        return False
    # The /* opens a comment unless a literal of its line, or a // comment, holds it.
    for m in _LINE_TOKENS.finditer(code, open_line, opened + 2):
        if m.group(0) == "//":
            if m.start() < opened:
                return False
        elif m.start() <= opened < m.end():
            return False
    return True


def script_weakness(code: str, matched: str) -> str:
    """Why a ``scripts`` match is weak ("" when it is not): every occurrence of the matched
    text in the inline code is inside a JavaScript comment (code that never runs).

    >>> script_weakness("/* ga('send','pageview'); */ var x;", "ga('send','pageview')")
    'commented-out code'
    >>> script_weakness("// ga('send','pageview')\\nga('send','pageview');", "ga('send','pageview')")
    ''
    """
    if "//" not in code and "/*" not in code:
        return ""
    reasons = _weak_everywhere(code, matched, lambda pos: WEAK_CODE_COMMENT if in_js_comment(code, pos) else "")
    return WEAK_CODE_COMMENT if reasons else ""
