"""Pattern text -> compiled Pattern.

A pattern is written the Wappalyzer way: a JavaScript regular expression, matched
case-insensitively, optionally followed by tags after ``\\;`` (``\\;version:\\1``,
``\\;confidence:50``).  This module

* splits the tags off (:func:`parse_pattern`),
* applies the reference engine's quantifier bounds (``+`` -> ``{1,250}``, ``*`` -> ``{0,250}``),
* translates the JavaScript syntax into Python ``re`` and RE2 syntax and into a Hyperscan
  prefilter form (:func:`translate`), and
* resolves version templates with back references and ternaries (:func:`resolve_version`).

No Scrapy, no I/O: stdlib only (RE2 is optional).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.engine import budget
from detector.engine.prefilter import scan_form
from detector.errors import SignatureError

try:  # pragma: no cover - depends on the platform
    import re2 as _re2

    _RE2_OPTIONS = _re2.Options()
    _RE2_OPTIONS.case_sensitive = False
    _RE2_OPTIONS.max_mem = 64 << 20
    _RE2_OPTIONS.log_errors = False
except ImportError:  # pragma: no cover
    _re2 = None
    _RE2_OPTIONS = None

TAG_SEPARATOR = "\\;"
#: The longest regex a pattern may have (the longest bundled one has about 1,100 characters).
MAX_PATTERN_LENGTH = 10_000
DEFAULT_CONFIDENCE = 100
PYTHON_FLAGS = re.IGNORECASE | re.ASCII

# What JavaScript's `.` and `\s` mean, spelt out for each target.  Python and RE2 must agree
# with JavaScript; the Hyperscan form (UTF-8 mode, ASCII-only case folding) only has to be a
# superset: it selects the candidates the exact matcher then confirms.
_JS_SPACE = "\\t\\n\\x0b\\f\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_RE2_SPACE = (
    "\\t\\n\\x0b\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}"
    "\\x{202f}\\x{205f}\\x{3000}\\x{feff}"
)
_SPACE = {"python": _JS_SPACE, "re2": _RE2_SPACE, "hyperscan": _RE2_SPACE}
_DOT = {
    "python": "[^\\n\\r\\u2028\\u2029]",
    "re2": "[^\\n\\r\\x{2028}\\x{2029}]",
    "hyperscan": "[^\\n\\r\\x{2028}\\x{2029}]",
}
_END = {"python": "\\Z", "re2": "\\z", "hyperscan": "\\z"}
_QUANT = re.compile(r"\{(\d+)(,(\d*))?\}")


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """A pattern as written: the regex text, its version template and confidence."""

    text: str
    regex: str
    version: str = ""
    confidence: int = DEFAULT_CONFIDENCE


def parse_pattern(text: str | float) -> PatternSpec:
    """Split a Wappalyzer pattern into regex, version template and confidence.

    >>> parse_pattern("jquery-([\\\\d.]+)\\\\.js\\\\;version:\\\\1\\\\;confidence:50")
    PatternSpec(text='jquery-([\\\\d.]+)\\\\.js\\\\;version:\\\\1\\\\;confidence:50', regex='jquery-([\\\\d.]+)\\\\.js', version='\\\\1', confidence=50)
    """
    raw = str(text)
    parts = raw.split(TAG_SEPARATOR)
    tags: dict[str, str] = {}
    for attr in parts[1:]:
        key, sep, value = attr.partition(":")
        if sep:
            tags[key] = value
    confidence = DEFAULT_CONFIDENCE
    if "confidence" in tags:
        try:
            confidence = int(tags["confidence"].strip() or DEFAULT_CONFIDENCE)
        except ValueError:
            m = re.match(r"\s*(\d+)", tags["confidence"])
            confidence = int(m.group(1)) if m else 0
    return PatternSpec(raw, parts[0], tags.get("version", ""), confidence)


def bound_quantifiers(source: str) -> str:
    """Apply the reference engine's rewrite: ``+`` -> ``{1,250}``, ``*`` -> ``{0,250}``.

    The rewrite is purely textual (it also touches ``+`` inside character classes and
    turns ``\\*`` into ``\\{0,250}``); reproducing it keeps results identical.

    >>> bound_quantifiers("a+b*\\\\+")
    'a{1,250}b{0,250}\\\\+'
    """
    marker = "\x00escapedPlus\x00"
    out = source.replace("/", "\\/").replace("\\+", marker)
    out = out.replace("+", "{1,250}").replace("*", "{0,250}")
    return out.replace(marker, "\\+")


@dataclass(slots=True)
class _Emitter:
    flavor: str
    out: list[str] = field(default_factory=list)
    groups: int = 0
    names: list[str] = field(default_factory=list)
    backrefs: bool = False
    lookaround: bool = False
    non_ascii: bool = False


class TranslationError(ValueError):
    """A JavaScript regex construct has no equivalent in the target flavour."""


def _count_groups(src: str) -> tuple[int, list[str]]:
    """Count capturing groups (and their names) in a JavaScript regex."""
    n, names, i, in_class = 0, [], 0, False
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "(":
            if src.startswith("(?<", i) and not src.startswith(("(?<=", "(?<!"), i):
                end = src.find(">", i)
                names.append(src[i + 3 : end])
                n += 1
            elif not src.startswith("(?", i):
                n += 1
        i += 1
    return n, names


def _hex(code: int, flavor: str) -> str:
    if flavor == "python":
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\x{{{code:x}}}"


def _escape(src: str, i: int, em: _Emitter, in_class: bool, total_groups: int) -> int:
    """Translate the escape starting at ``src[i] == '\\\\'``; return the next index."""
    flavor = em.flavor
    if i + 1 >= len(src):
        em.out.append("\\\\")  # a trailing backslash is a literal one in JavaScript
        return i + 1
    c = src[i + 1]
    if c in "123456789" and not in_class:
        j = i + 1
        while j < len(src) and src[j].isdigit():
            j += 1
        num = int(src[i + 1 : j])
        if num <= total_groups:
            em.backrefs = True
            if flavor == "re2":
                raise TranslationError("back reference")
            em.out.append(f"(?:\\{num})" if flavor == "python" else f"\\{num}")
            return j
        # No such group: JavaScript reads a legacy octal escape or the digit itself.
        if c in "89":
            em.out.append(c)
            return i + 2
        j = i + 1
        while j < len(src) and j < i + 4 and src[j] in "01234567":
            j += 1
        code = int(src[i + 1 : j], 8)
        if code > 0o377:
            j -= 1
            code = int(src[i + 1 : j], 8)
        em.out.append(_hex(code, flavor))
        return j
    if c == "0":
        j = i + 2
        if j < len(src) and src[j] in "01234567":
            while j < len(src) and j < i + 4 and src[j] in "01234567":
                j += 1
            em.out.append(_hex(int(src[i + 1 : j], 8), flavor))
            return j
        em.out.append(_hex(0, flavor))
        return i + 2
    if c in "dDwW":
        em.out.append("\\" + c)
        return i + 2
    if c in "bB":
        if in_class:
            em.out.append(_hex(8, flavor) if c == "b" else "B")
        else:
            em.out.append("\\" + c)
        return i + 2
    if c == "s":
        space = _SPACE[flavor]
        em.out.append(space if in_class else f"[{space}]")
        return i + 2
    if c == "S":
        if in_class:
            # [\S] inside a class: approximate by "anything but ASCII space" (rare)
            em.out.append("\\S")
        else:
            em.out.append(f"[^{_SPACE[flavor]}]")
        return i + 2
    if c in "nrtfv":
        em.out.append({"n": "\\n", "r": "\\r", "t": "\\t", "f": "\\f", "v": "\\x0b"}[c])
        return i + 2
    if c == "x":
        h = src[i + 2 : i + 4]
        if len(h) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in h):
            em.out.append(_hex(int(h, 16), flavor))
            return i + 4
        em.out.append("x")
        return i + 2
    if c == "u":
        h = src[i + 2 : i + 6]
        if len(h) == 4 and all(ch in "0123456789abcdefABCDEF" for ch in h):
            code = int(h, 16)
            if code >= 0x80:
                em.non_ascii = True
            em.out.append(_hex(code, flavor))
            return i + 6
        em.out.append("u")
        return i + 2
    if c == "c":
        if i + 2 < len(src) and src[i + 2].isalpha() and src[i + 2].isascii():
            em.out.append(_hex(ord(src[i + 2]) % 32, flavor))
            return i + 3
        em.out.append("\\\\c")
        return i + 2
    if c == "k" and not in_class:
        m = re.match(r"k<([^>]+)>", src[i + 1 :])
        if m and em.names:
            em.backrefs = True
            if flavor == "re2":
                raise TranslationError("named back reference")
            if flavor == "python":
                em.out.append(f"(?P={m.group(1)})")
            else:
                em.out.append(f"\\k<{m.group(1)}>")
            return i + 1 + m.end()
        em.out.append("k")
        return i + 2
    if c.isalnum() or c == "_":
        em.out.append(c)  # identity escape of a letter: the letter itself
        return i + 2
    if ord(c) >= 0x80:
        em.non_ascii = True
        em.out.append(_literal(c, flavor))
        return i + 2
    em.out.append("\\" + c)
    return i + 2


def case_variants(c: str) -> str:
    """A character and its single-character case variants (JavaScript folds non-ASCII too).

    >>> case_variants("é")
    'éÉ'
    """
    out = c
    for v in (c.lower(), c.upper()):
        # JavaScript never folds a non-ASCII character onto an ASCII one (ı is not I).
        if len(v) == 1 and v not in out and ord(v) >= 0x80:
            out += v
    return out


def _literal(c: str, flavor: str, in_class: bool = False) -> str:
    code = ord(c)
    if code < 0x80:
        return re.escape(c) if not c.isalnum() and c != "_" else c
    if flavor == "re2":
        return _hex(code, flavor)  # RE2 folds non-ASCII case itself
    # Python (ASCII mode) and Hyperscan fold ASCII only: spell non-ASCII case pairs out.
    variants = case_variants(c)
    text = variants if flavor == "python" else "".join(_hex(ord(v), flavor) for v in variants)
    if len(variants) == 1 or in_class:
        return text
    return f"[{text}]"


def _char_class(src: str, i: int, em: _Emitter, total_groups: int) -> int:
    """Translate the character class starting at ``src[i] == '['``."""
    j = i + 1
    negated = j < len(src) and src[j] == "^"
    if negated:
        j += 1
    if j < len(src) and src[j] == "]":
        # `[]` never matches and `[^]` matches anything, in JavaScript only.
        em.out.append("[\\s\\S]" if negated else "(?!)")
        return j + 1
    parts: list[str] = []
    inner = _Emitter(em.flavor, parts, em.groups, em.names)
    prev_class_escape = False
    while j < len(src) and src[j] != "]":
        c = src[j]
        if c == "\\":
            is_class_escape = src[j + 1 : j + 2] in ("d", "D", "w", "W", "s", "S")
            if is_class_escape and parts and parts[-1] == "-":
                parts[-1] = "\\-"  # JavaScript reads `-` before a class escape literally
            j = _escape(src, j, inner, True, total_groups)
            prev_class_escape = is_class_escape
            continue
        if c == "-":
            # JavaScript (Annex B) reads `-` next to a class escape as a literal hyphen.
            parts.append("\\-" if prev_class_escape else "-")
        else:
            if ord(c) >= 0x80:
                em.non_ascii = True
            parts.append(_literal(c, em.flavor, in_class=True))
        prev_class_escape = False
        j += 1
    if j >= len(src):
        raise TranslationError("unterminated character set")
    em.non_ascii = em.non_ascii or inner.non_ascii
    body = "".join(parts)
    em.out.append(("[^" if negated else "[") + body + "]")
    return j + 1


def translate(source: str, flavor: str) -> tuple[str, bool, bool, bool]:
    """Translate a (quantifier-bounded) JavaScript regex into ``flavor`` syntax.

    ``flavor`` is ``python``, ``re2`` or ``hyperscan``.  Returns the text and whether the
    pattern uses back references, lookaround, or non-ASCII characters.
    Raises TranslationError when the target cannot express the pattern.

    >>> translate("a.b$", "python")[0]
    'a[^\\\\n\\\\r\\\\u2028\\\\u2029]b\\\\Z'
    """
    total_groups, names = _count_groups(source)
    em = _Emitter(flavor, names=names)
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            i = _escape(source, i, em, False, total_groups)
        elif c == "[":
            i = _char_class(source, i, em, total_groups)
        elif c == "(":
            if source.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                em.lookaround = True
                if flavor == "re2":
                    raise TranslationError("lookaround")
                k = 4 if source.startswith(("(?<=", "(?<!"), i) else 3
                em.out.append(source[i : i + k])
                i += k
            elif source.startswith("(?<", i):
                end = source.find(">", i)
                name = source[i + 3 : end]
                em.out.append(f"(?P<{name}>" if flavor != "hyperscan" else f"(?<{name}>")
                i = end + 1
            elif source.startswith("(?:", i):
                em.out.append("(?:")
                i += 3
            elif source.startswith("(?", i):
                raise TranslationError(f"unsupported group syntax {source[i:i + 3]!r}")
            else:
                em.out.append("(")
                i += 1
        elif c == ".":
            em.out.append(_DOT[flavor])
            i += 1
        elif c == "$":
            em.out.append(_END[flavor])
            i += 1
        elif c == "{":
            m = _QUANT.match(source, i)
            if m and (m.group(3) is None or m.group(3) != "" or m.group(2)):
                lo = int(m.group(1))
                hi = m.group(3)
                if hi not in (None, "") and int(hi) < lo:
                    raise TranslationError("numbers out of order in {} quantifier")
                if flavor == "hyperscan" and hi not in (None, "") and int(hi) > 16:
                    # Unbounded is a superset, and large bounds make Hyperscan slow to compile.
                    em.out.append(f"{{{lo},}}")
                else:
                    em.out.append(m.group(0))
                i = m.end()
            else:
                em.out.append("\\{")
                i += 1
        elif c == "}":
            em.out.append("\\}")
            i += 1
        elif ord(c) >= 0x80:
            em.non_ascii = True
            em.out.append(_literal(c, flavor))
            i += 1
        else:
            em.out.append(c)
            i += 1
    return "".join(em.out), em.backrefs, em.lookaround, em.non_ascii


_UNANCHORED = _re2._Anchor.UNANCHORED if _re2 is not None else None


def encode_text(text: str) -> bytes:
    """UTF-8 bytes for RE2 (lone surrogates from broken input pass through).

    >>> encode_text("é")
    b'\\xc3\\xa9'
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What a pattern matched: the whole match and its groups (None if unset)."""

    text: str
    groups: tuple[str | None, ...]


class Pattern:
    """A compiled pattern: the exact matcher plus what the prefilters need.

    The regex engines compile lazily, on first use (most patterns never become candidates
    on a given page), and a Pattern pickles as text, so a compiled engine can be cached.
    """

    __slots__ = (
        "_py",
        "_r2_done",
        "_r2_match",
        "_r2_src",
        "accelerate",
        "bounded",
        "hyperscan",
        "needs_python",
        "origin",
        "page",
        "python",
        "spec",
        "spent",
        "switched_off",
    )

    def __init__(self, spec: PatternSpec, bounded: str, python: str, hyperscan: str | None,
                 needs_python: bool, accelerate: bool = True, origin: str = "") -> None:
        self.spec = spec
        self.bounded = bounded
        self.python = python
        self.hyperscan = hyperscan
        self.needs_python = needs_python
        self.accelerate = accelerate
        self._py: re.Pattern[str] | None = None
        self._r2_src: str | None = None
        self._r2_match: Any = None
        self._r2_done = False
        #: Where the pattern comes from (file, technology, rule), for reports.
        self.origin = origin
        #: Its time on Python's ``re`` on the current page, and whether it is switched off
        #: for the rest of the run (see :mod:`detector.engine.budget`).
        self.page = 0
        self.spent = 0.0
        self.switched_off = False

    def __getstate__(self) -> tuple[PatternSpec, str, str, str | None, bool, bool, str]:
        return (self.spec, self.bounded, self.python, self.hyperscan, self.needs_python, self.accelerate,
                self.origin)

    def __setstate__(self, state: tuple[PatternSpec, str, str, str | None, bool, bool, str]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Pattern({self.spec.text!r})"

    @property
    def regex(self) -> str:
        """The regex as written in the signature."""
        return self.spec.regex

    def python_regex(self) -> re.Pattern[str]:
        """The compiled Python ``re`` form (compiled on first use)."""
        if self._py is None:
            self._py = re.compile(self.python, PYTHON_FLAGS)
        return self._py

    def _re2(self) -> Any:
        if not self._r2_done:
            self._r2_done = True
            if self.accelerate and _re2 is not None and not self.needs_python:
                self._r2_src, compiled = _compile_re2(self.bounded)
                if compiled is not None:
                    # The low-level matcher of google-re2 works on bytes encoded once per text.
                    self._r2_match = compiled._regexp.Match  # type: ignore[attr-defined]
        return self._r2_match

    @property
    def re2(self) -> str | None:
        """The RE2 form, or None when RE2 cannot run this pattern."""
        self._re2()
        return self._r2_src if self._r2_match is not None else None

    @property
    def uses_python(self) -> bool:
        """True when matching runs on Python's backtracking ``re`` (no RE2 form)."""
        return self._re2() is None

    def search(self, value: str, accelerated: bool = True, encoded: bytes | None = None) -> MatchResult | None:
        """Search ``value``; RE2 is used when ``accelerated`` and the pattern allows it.

        ``encoded`` is ``encode_text(value)``, passed when many patterns scan one text so
        it is encoded once.
        """
        match = self._re2() if accelerated else None
        if match is not None:
            data = encoded if encoded is not None else encode_text(value)
            spans = match(_UNANCHORED, data, 0, len(data))
            if spans[0][0] < 0:
                return None
            groups = tuple(None if a < 0 else data[a:b].decode("utf-8", "surrogatepass") for a, b in spans)
            return MatchResult(groups[0] or "", groups)
        if self.switched_off:
            return None
        m = budget.search(self, self.python_regex(), value)
        if m is None:
            return None
        return MatchResult(m.group(0), (m.group(0),) + tuple(m.groups()))

    def version_for(self, match: MatchResult) -> str:
        """The version this match gives (empty when the pattern has no template)."""
        if not self.spec.version:
            return ""
        return resolve_version(self.spec.version, match.groups)


def compile_pattern(text: str | float, *, accelerate: bool = True, validate: bool = True) -> Pattern:
    """Compile one Wappalyzer pattern; raise SignatureError when it cannot be compiled.

    ``validate`` compiles the Python form now (to report errors at load time); otherwise
    both engines compile on first use.
    """
    spec = parse_pattern(text)
    if len(spec.regex) > MAX_PATTERN_LENGTH:
        raise SignatureError(f"pattern of {len(spec.regex):,} characters; the limit is {MAX_PATTERN_LENGTH:,}")
    bounded = bound_quantifiers(spec.regex)
    try:
        py_src, backrefs, lookaround, _ = translate(bounded, "python")
    except TranslationError as exc:
        raise SignatureError(f"invalid regex {spec.regex!r} ({exc})") from None
    try:
        # Hyperscan scans UTF-8 (HS_FLAG_UTF8); non-ASCII case pairs are spelt out.  The scan
        # looks for the part from the longest literal on (a superset: see scan_form).
        hs_src: str | None = scan_form(translate(bounded, "hyperscan")[0])
    except TranslationError:
        hs_src = None
    pattern = Pattern(spec, bounded, py_src, hs_src, backrefs or lookaround, accelerate)
    if validate:
        try:
            pattern.python_regex()
        except (re.error, OverflowError, RecursionError) as exc:
            raise SignatureError(f"invalid regex {spec.regex!r} ({exc})") from None
    return pattern


_NESTED_BOUND = re.compile(r"\{([01]),250\}")


def _compile_re2(bounded: str) -> tuple[str | None, object | None]:
    """Compile for RE2, or (None, None) when RE2 cannot take the pattern.

    RE2 refuses nested counted repetitions whose product exceeds 1000 (``(?:x{1,250}){0,250}``);
    inside groups those bounds are relaxed to ``+``/``*``, which differs only on runs of more
    than 250 repetitions of the inner item.
    """
    assert _re2 is not None
    try:
        src = translate(bounded, "re2")[0]
    except TranslationError:
        return None, None
    for attempt in range(2):
        try:
            return src, _re2.compile(src, _RE2_OPTIONS)
        except Exception as exc:  # noqa: BLE001 - RE2 raises its own error type
            if attempt or "repetition" not in str(exc):
                return None, None
            src = _relax_nested(src)
    return None, None


def _relax_nested(src: str) -> str:
    """Replace ``{0,250}``/``{1,250}`` inside parentheses by ``*``/``+``."""
    out, depth, i = [], 0, 0
    while i < len(src):
        c = src[i]
        if c == "\\":
            out.append(src[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = i + 1
            while end < len(src) and src[end] != "]":
                end += 2 if src[end] == "\\" else 1
            out.append(src[i : end + 1])
            i = end + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        m = _NESTED_BOUND.match(src, i)
        if m and depth > 0:
            out.append("*" if m.group(1) == "0" else "+")
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def resolve_version(template: str, groups: Sequence[str | None]) -> str:
    """Build a version from a template with ``\\N`` back references and ``\\N?a:b`` ternaries.

    Mirrors the reference engine: a group longer than 10 characters is not used, the
    ternary is evaluated against the template, and one unmatched reference is dropped.

    >>> resolve_version("\\\\1", ("jquery-3.6.0", "3.6.0"))
    '3.6.0'
    >>> resolve_version("\\\\1?4:3", ("x", None))
    '3'
    """
    resolved = template
    for index, value in enumerate(groups):
        if len("undefined" if value is None else value) > 10:
            continue
        ternary = re.search(rf"\\{index}\?([^:]+):(.*)$", template)
        if ternary:
            resolved = template.replace(ternary.group(0), ternary.group(1) if value else ternary.group(2), 1)
        resolved = resolved.strip().replace(f"\\{index}", value or "")
    return re.sub(r"\\\d", "", resolved, count=1)


_LITERAL_MIN = 1


def required_literals(python_source: str) -> frozenset[str] | None:
    """Lower-cased strings of which at least one occurs in any text the pattern matches.

    None when no such set can be derived (the pattern is then always a candidate).

    >>> sorted(required_literals("wp-(?:content|includes)"))  # the longer set wins
    ['content', 'includes']
    >>> required_literals("[a-z]+") is None
    True
    """
    import importlib

    try:
        sre_parse: Any = importlib.import_module("re._parser")
    except ImportError:  # pragma: no cover - Python < 3.11
        sre_parse = importlib.import_module("sre_parse")
    try:
        parsed = sre_parse.parse(python_source, PYTHON_FLAGS)
    except Exception:  # noqa: BLE001
        return None
    best = _seq_literals(list(parsed), sre_parse)
    if best is None or not best or min(len(s) for s in best) < _LITERAL_MIN:
        return None
    return frozenset(best)


def _score(lits: frozenset[str] | None) -> int:
    return -1 if not lits else min(len(s) for s in lits) * 4 - len(lits)


def _seq_literals(items: list[tuple[object, object]], sp: object) -> frozenset[str] | None:
    c = sp.__dict__ if hasattr(sp, "__dict__") else {}
    LITERAL = c["LITERAL"]
    SUBPATTERN = c["SUBPATTERN"]
    BRANCH = c["BRANCH"]
    MAX_REPEAT = c["MAX_REPEAT"]
    MIN_REPEAT = c["MIN_REPEAT"]
    IN = c["IN"]
    best: frozenset[str] | None = None
    run: list[str] = []

    def flush() -> None:
        nonlocal best, run
        if run:
            cand = frozenset({"".join(run).lower()})
            if _score(cand) > _score(best):
                best = cand
        run = []

    for op, av in items:
        if op is LITERAL:
            run.append(chr(av))  # type: ignore[arg-type]
            continue
        if op is IN and len(av) == 1 and av[0][0] is LITERAL:  # type: ignore[arg-type,index]
            run.append(chr(av[0][1]))  # type: ignore[index]
            continue
        flush()
        sub: frozenset[str] | None = None
        if op is SUBPATTERN:
            sub = _seq_literals(list(av[-1]), sp)  # type: ignore[index]
        elif op is BRANCH:
            alts = [_seq_literals(list(b), sp) for b in av[1]]  # type: ignore[index]
            if all(a for a in alts):
                sub = frozenset().union(*alts)  # type: ignore[arg-type]
        elif op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:  # type: ignore[index]
            sub = _seq_literals(list(av[2]), sp)  # type: ignore[index]
        if sub and _score(sub) > _score(best):
            best = sub
    flush()
    return best
