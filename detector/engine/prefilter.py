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
