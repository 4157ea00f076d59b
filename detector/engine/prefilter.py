"""Candidate selection: which patterns can possibly match a text.

Two interchangeable implementations with the same contract, ``candidates(text) -> set[int]``,
a superset of the patterns that match:

* :class:`HyperscanPrefilter` scans every pattern of a kind in one pass (Hyperscan's
  prefilter mode accepts lookarounds and back references by approximating them);
* :class:`LiteralPrefilter` is the pure-Python fallback: a pattern is a candidate when one
  of its required literals occurs in the lower-cased text.

Patterns neither can represent are always candidates.  The exact match that follows is the
same in both cases, so results are identical (tested).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

_hs: Any
try:  # pragma: no cover - depends on the platform
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None


def hs_view(text: str) -> bytes:
    """The text as valid UTF-8 for Hyperscan (lone surrogates become U+FFFD).

    >>> hs_view("café")
    b'caf\\xc3\\xa9'
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


#: The shortest literal a scan form keeps: a shorter one is too common to stand alone.
MIN_SCAN_LITERAL = 4
_QUANTIFIER = re.compile(r"(?:\{\d+(?:,\d*)?\}|[?*+])\??")
_ZERO_WIDTH_ESCAPES = frozenset("bBAzZG")
_CLASS_ESCAPES = frozenset("dDwWsShHvV")
#: An item of an expression: (its text without the quantifier, its kind, its quantifier).
#: Kinds: "char" (one literal character), "class" (one of a set: ``[...]``, ``.``, ``\d``),
#: "group", "assert" (zero width: ``^``, ``$``, ``\b``, lookaround), "bar" (``|``).
_Item = tuple[str, str, str]


def scan_form(expr: str) -> str:
    r"""The part of a Hyperscan expression the prefilter scans for: the expression without
    the leading context that precedes its longest literal across an unbounded repetition.

    ``<[^>]{1,}(?:id|class)="livefyre`` makes Hyperscan follow ``<[^>]{1,}`` from every
    ``<`` of a page; ``(?:id|class)="livefyre`` is found at literal-matching speed.  Any text
    the whole expression matches has a match of what follows the cut (the regex after it
    matches where it matched before), so the scan still selects every pattern that matches:
    only a few more candidates go on to the exact match, which decides as before.  The cut
    is made only where the kept part holds the expression's longest literal (at least
    :data:`MIN_SCAN_LITERAL` characters), never in an expression with back references, and
    in each alternative of a top-level alternation on its own.

    >>> print(scan_form('<[^>]{1,}(?:id|class)="livefyre'))
    (?:id|class)="livefyre
    >>> print(scan_form(r'<link [^>]{0,}href="[^"]{1,}use\.typekit\.(?:net|com)'))
    use\.typekit\.(?:net|com)
    >>> print(scan_form(r"(?:<img[^>]{1,}pixel\.example|<a [^>]{0,}rel=lightbox)"))
    (?:pixel\.example|rel=lightbox)
    >>> print(scan_form(r"jquery[^/]{0,}\.js"), scan_form("<[^>]{1,}ab"), scan_form(r"<(a)[^>]{1,}x=\1hello"))
    jquery[^/]{0,}\.js <[^>]{1,}ab <(a)[^>]{1,}x=\1hello
    """
    items = _items(expr)
    if items is None or _has_back_reference(expr):
        return expr
    return _cut(items)


def _has_back_reference(expr: str) -> bool:
    r"""Whether an escape of ``expr`` refers back to a group (``\1``, ``\k<name>``).

    >>> _has_back_reference(r"(a)\1"), _has_back_reference(r"\\1"), _has_back_reference(r"a\.b")
    (True, False, False)
    """
    i = expr.find("\\")
    while i >= 0:
        c = expr[i + 1 : i + 2]
        if c.isdigit() or c in ("k", "g"):
            return True
        i = expr.find("\\", i + 2)
    return False


def _cut(items: list[_Item]) -> str:
    if any(kind == "bar" for _, kind, _ in items):
        alternatives: list[list[_Item]] = [[]]
        for item in items:
            if item[1] == "bar":
                alternatives.append([])
            else:
                alternatives[-1].append(item)
        return "|".join(_cut(alternative) for alternative in alternatives)
    if len(items) == 1 and items[0][1] == "group" and not items[0][2] and items[0][0].startswith("(?:"):
        inner = _items(items[0][0][3:-1])
        return items[0][0] if inner is None else "(?:" + _cut(inner) + ")"
    longest = _longest_literal(items)
    start = 0
    if longest >= MIN_SCAN_LITERAL:
        for k, (_, kind, quantifier) in enumerate(items):
            if kind in ("char", "class", "group") and _unbounded(quantifier) and _longest_literal(items[k + 1 :]) == longest:
                start = k + 1
    return "".join(text + quantifier for text, _, quantifier in items[start:])


def _unbounded(quantifier: str) -> bool:
    return quantifier[:1] in ("*", "+") or (quantifier.startswith("{") and quantifier.rstrip("?").endswith(",}"))


def _longest_literal(items: Sequence[_Item]) -> int:
    """Characters in the longest run of literal characters every match has, in order."""
    longest = run = 0
    for _, kind, quantifier in items:
        if kind == "char" and not quantifier:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return longest


def _items(expr: str) -> list[_Item] | None:
    """The top-level items of ``expr``, or None when it cannot be read to its end."""
    items: list[_Item] = []
    i, n = 0, len(expr)
    try:
        while i < n:
            c = expr[i]
            if c == "|":
                items.append(("|", "bar", ""))
                i += 1
                continue
            if c == ")":
                return None
            start = i
            if c == "\\":
                i, kind = _escape_end(expr, i)
            elif c == "[":
                i, kind = _class_end(expr, i), "class"
            elif c == "(":
                kind = "assert" if expr.startswith(("(?=", "(?!", "(?<=", "(?<!"), i) else "group"
                if expr.startswith("(?", i) and kind == "group" and not expr.startswith(("(?:", "(?<"), i):
                    return None  # inline flags or another construct the cut does not know
                i = _group_end(expr, i)
            elif c in "^$":
                i, kind = i + 1, "assert"
            elif c == ".":
                i, kind = i + 1, "class"
            else:
                i, kind = i + 1, "char"
            m = _QUANTIFIER.match(expr, i)
            quantifier = m.group(0) if m else ""
            i += len(quantifier)
            items.append((expr[start : i - len(quantifier)], kind, quantifier))
    except (IndexError, ValueError):
        return None
    return items


def _escape_end(expr: str, i: int) -> tuple[int, str]:
    c = expr[i + 1]
    if c == "x" and expr[i + 2] == "{":
        return expr.index("}", i) + 1, "char"
    if c == "x":
        return i + 4, "char"
    if c in _ZERO_WIDTH_ESCAPES:
        return i + 2, "assert"
    if c in _CLASS_ESCAPES:
        return i + 2, "class"
    return i + 2, "char"


def _class_end(expr: str, i: int) -> int:
    """The index after the character class that starts at ``expr[i] == "["``."""
    j = i + 1
    if expr[j] == "^":
        j += 1
    if expr[j] == "]":
        j += 1
    while expr[j] != "]":
        j += 2 if expr[j] == "\\" else 1
    return j + 1


def _group_end(expr: str, i: int) -> int:
    """The index after the group that starts at ``expr[i] == "("``."""
    depth = 0
    j = i
    while True:
        c = expr[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _class_end(expr, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1


class Prefilter(Protocol):
    """Selects candidate pattern indices for a text."""

    def candidates(self, text: str, view: bytes | None = None) -> set[int]:
        """Indices of the patterns that may match ``text`` (``view``: its ``hs_view``, optional)."""


class PrefilterEntry(Protocol):
    """What a prefilter needs to know of one pattern."""

    hyperscan: str | None
    literals: frozenset[str] | None


def hyperscan_available() -> bool:
    """True when the Hyperscan accelerator can be used on this machine."""
    return _hs is not None


class LiteralPrefilter:
    """Pure-Python prefilter over required literals."""

    def __init__(self, entries: Sequence[PrefilterEntry]) -> None:
        self.always: set[int] = set()
        self.by_literal: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            if not e.literals:
                self.always.add(i)
                continue
            for lit in e.literals:
                self.by_literal.setdefault(lit, []).append(i)

    def candidates(self, text: str, view: bytes | None = None) -> set[int]:
        """Patterns whose literal occurs in ``text`` (lower-cased), plus the unfilterable ones."""
        out = set(self.always)
        if not text:
            return out
        low = text.lower()
        for lit, ids in self.by_literal.items():
            if lit in low:
                out.update(ids)
        return out


class HyperscanPrefilter:
    """One Hyperscan database per text kind, scanned once per text."""

    FLAGS = 0

    def __init__(self, entries: Sequence[PrefilterEntry], *, caseless: bool = True) -> None:
        assert _hs is not None
        self.always: set[int] = set()
        expressions: list[bytes] = []
        ids: list[int] = []
        flags = (_hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_ALLOWEMPTY | _hs.HS_FLAG_UTF8
                 | (_hs.HS_FLAG_CASELESS if caseless else 0))
        for i, e in enumerate(entries):
            expr = e.hyperscan
            if expr is None or expr == "":
                self.always.add(i)
                continue
            expressions.append(expr.encode("utf-8"))
            ids.append(i)
        self.db: Any = None
        if expressions:
            self.db, rejected = _compile(expressions, ids, flags)
            self.always.update(rejected)

    def __getstate__(self) -> tuple[set[int], bytes | None]:
        assert _hs is not None
        return self.always, (_hs.dumpb(self.db) if self.db is not None else None)

    def __setstate__(self, state: tuple[set[int], bytes | None]) -> None:
        assert _hs is not None
        self.always, blob = state
        self.db = None
        if blob is not None:
            self.db = _hs.loadb(blob, _hs.HS_MODE_BLOCK)
            self.db.scratch = _hs.Scratch(self.db)

    def candidates(self, text: str, view: bytes | None = None) -> set[int]:
        """Patterns Hyperscan finds in ``text``, plus the ones it could not take.

        ``view`` is ``hs_view(text)`` when the caller has it already.
        """
        out = set(self.always)
        if self.db is None or not text:
            return out
        add = out.add

        def on_match(pid: int, start: int, end: int, flags: int, ctx: object) -> None:
            add(pid)

        self.db.scan(view if view is not None else hs_view(text), match_event_handler=on_match)
        return out


def _compile(expressions: list[bytes], ids: list[int], flags: int) -> tuple[Any, set[int]]:
    """Compile, dropping (to 'always a candidate') any expression Hyperscan refuses.

    Hyperscan's error does not say which expression failed, so on failure every expression
    is tried alone once and the good ones are compiled together.
    """
    assert _hs is not None
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    try:
        db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=[flags] * len(expressions))
        return db, set()
    except _hs.error:
        pass
    rejected: set[int] = set()
    good_e, good_i = [], []
    for e, i in zip(expressions, ids):
        single = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        try:
            single.compile(expressions=[e], ids=[i], elements=1, flags=[flags])
            good_e.append(e)
            good_i.append(i)
        except _hs.error:
            rejected.add(i)
    if not good_e:
        return None, rejected
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    db.compile(expressions=good_e, ids=good_i, elements=len(good_e), flags=[flags] * len(good_e))
    return db, rejected
