"""Site-level verdicts: one row per technology found on a site, with the evidence behind it.

Pure data (no Scrapy, no SQLite); :meth:`detector.engine.match.Engine.detect_site` (see
:mod:`detector.engine.site`) resolves a site's pages into these, and every piece of
evidence names the page it was found on (``page``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Evidence kept per technology and site; enough to explain a verdict, small enough to store.
MAX_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class SiteDetection:
    """One technology on one site: version and confidence resolved over its pages, with evidence."""

    technology: str
    version: str | None
    confidence: int
    categories: tuple[str, ...]
    evidence: tuple[Mapping[str, Any], ...]
    #: "rendered" when only the rendered tier (a browser) saw it, else "static".
    tier: str = "static"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (``"tier": "rendered"`` only for rendered-only detections)."""
        return {
            "technology": self.technology,
            "version": self.version,
            "confidence": self.confidence,
            "categories": list(self.categories),
            "evidence": [dict(e) for e in self.evidence],
            **({"tier": self.tier} if self.tier != "static" else {}),
        }
