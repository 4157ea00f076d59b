"""Site-level verdicts: the detections of a site's pages merged into one row per technology.

Pure code (no Scrapy, no SQLite): highest confidence wins, the best version is kept (the
engine's rule), and every piece of evidence names the page it was found on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detector.engine.match import Detection, better_version

#: Evidence kept per technology and site; enough to explain a verdict, small enough to store.
MAX_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class SiteDetection:
    """One technology on one site: best version and confidence over its pages, with evidence."""

    technology: str
    version: str | None
    confidence: int
    categories: tuple[str, ...]
    evidence: tuple[Mapping[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "technology": self.technology,
            "version": self.version,
            "confidence": self.confidence,
            "categories": list(self.categories),
            "evidence": [dict(e) for e in self.evidence],
        }


def merge_site(pages: Iterable[tuple[str, Sequence[Detection]]]) -> list[SiteDetection]:
    """Merge (page URL, detections) pairs into one SiteDetection per technology, by name.

    >>> from detector.engine.match import Evidence
    >>> ev = Evidence("meta", "WordPress ([\\\\d.]+)", "WordPress 6.4")
    >>> a = Detection("WordPress", None, 50, ("CMS",), (ev,))
    >>> b = Detection("WordPress", "6.4", 100, ("CMS",), (ev,))
    >>> [(d.technology, d.version, d.confidence) for d in merge_site([("u1", [a]), ("u2", [b])])]
    [('WordPress', '6.4', 100)]
    """
    merged: dict[str, dict[str, Any]] = {}
    for page_url, detections in pages:
        for d in detections:
            slot = merged.setdefault(
                d.technology,
                {"version": "", "confidence": 0, "categories": d.categories, "evidence": []},
            )
            slot["confidence"] = max(slot["confidence"], d.confidence)
            if d.version:
                slot["version"] = better_version(slot["version"], d.version)
            evidence: list[dict[str, Any]] = slot["evidence"]
            for e in d.evidence:
                if len(evidence) >= MAX_EVIDENCE:
                    break
                evidence.append({"page": page_url, **e.to_dict()})
    return [
        SiteDetection(
            technology=name,
            version=slot["version"] or None,
            confidence=slot["confidence"],
            categories=tuple(slot["categories"]),
            evidence=tuple(slot["evidence"]),
        )
        for name, slot in sorted(merged.items(), key=lambda kv: kv[0].lower())
    ]
