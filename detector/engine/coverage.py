"""Coverage of a target list: for each technology name, what the library knows of it.

A sales team's list of the tools it segments by (one name a line, or a CSV whose first
column is the name) meets the library: is the technology there, by which rule kinds, with
examples, and can a crawler that runs no JavaScript see it at all?
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detector.engine.signatures import BROWSER_KINDS, NETWORK_KINDS, Library, Signature

#: First cells that name a CSV column rather than a technology.
HEADER_CELLS = frozenset({"name", "technology", "technologies", "tech", "vendor", "tool", "product"})


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One asked-for name and what the library has for it."""

    asked: str
    line: int
    name: str | None
    kinds: tuple[str, ...] = ()
    examples: int = 0
    layer: bool = False
    suggestions: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        """Whether the library has the technology."""
        return self.name is not None

    @property
    def static_kinds(self) -> tuple[str, ...]:
        """The rule kinds a crawler matches on the served response (no JavaScript run)."""
        return tuple(k for k in self.kinds if k not in BROWSER_KINDS and k not in NETWORK_KINDS)

    @property
    def needs_browser(self) -> bool:
        """Found, but only by rules a browser runs (``js``, ``xhr``, DOM ``properties``)."""
        return self.found and not self.static_kinds and any(k in BROWSER_KINDS for k in self.kinds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "asked": self.asked, "line": self.line, "found": self.found, "name": self.name,
            "kinds": list(self.kinds), "static_kinds": list(self.static_kinds), "examples": self.examples,
            "needs_browser": self.needs_browser, "own_rules": self.layer, "suggestions": list(self.suggestions),
        }


def read_names(text: str) -> list[tuple[int, str]]:
    """(line number, name) of each technology a list names.

    One name a line, or CSV (the first column is the name; a header row is skipped); blank
    lines and ``#`` comments are skipped.

    >>> read_names("HubSpot\\n\\n# intent\\n6sense\\n")
    [(1, 'HubSpot'), (4, '6sense')]
    >>> read_names('name,owner\\n"Salesforce, Inc.",ann\\nMarketo,bob\\n')
    [(2, 'Salesforce, Inc.'), (3, 'Marketo')]
    """
    out: list[tuple[int, str]] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        cell = row[0].strip().lstrip("\ufeff").strip()
        if not cell or cell.startswith("#"):
            continue
        if not out and len(row) > 1 and cell.lower() in HEADER_CELLS:
            continue
        out.append((n, cell))
    return out


def rule_kinds(sig: Signature) -> tuple[str, ...]:
    """The rule kinds of a signature; a ``dom`` rule that only reads JavaScript properties counts as ``js``."""
    kinds: list[str] = []
    for kind, value in sig.rules.items():
        if kind == "dom" and isinstance(value, Mapping):
            specs = [s for s in value.values() if isinstance(s, Mapping)]
            if specs and all(set(s) <= {"properties"} for s in specs):
                kind = "js"
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def coverage(library: Library, names: Iterable[tuple[int, str]]) -> list[CoverageRow]:
    """One row per asked-for name: matched by name, case-insensitively, else up to 3 suggestions."""
    by_lower: dict[str, Signature] = {}
    for sig in library.signatures.values():
        by_lower.setdefault(sig.name.lower(), sig)
    rows = []
    for line, asked in names:
        found = by_lower.get(asked.lower())
        if found is None:
            rows.append(CoverageRow(asked, line, None, suggestions=_suggestions(asked, by_lower)))
            continue
        rows.append(CoverageRow(asked, line, found.name, rule_kinds(found), len(found.examples), found.layer))
    return rows


def _suggestions(asked: str, by_lower: Mapping[str, Signature]) -> tuple[str, ...]:
    """Up to 3 names for a name the library lacks: longer names holding it, technologies whose
    description gives it (an old or product name: "Pardot"), then near spellings."""
    low = asked.lower()
    out: list[str] = []
    if len(asked) >= 4:
        word = re.compile(rf"(?<!\w){re.escape(asked)}(?!\w)", re.IGNORECASE)
        out += [c for c in by_lower if low in c]
        out += [c for c, s in by_lower.items() if word.search(str(s.info.get("description", "")))]
    out += difflib.get_close_matches(low, list(by_lower), n=3, cutoff=0.6)
    unique = list(dict.fromkeys(out))[:3]
    return tuple(by_lower[c].name for c in unique)
