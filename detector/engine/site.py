"""A site's pages resolved at once, as the reference engine resolves one analysis.

Wappalyzer's site driver collects the detections of every page it visits, keeps each
(technology, pattern) once, and resolves the lot: confidences summed and capped at 100, the
best version (:func:`~detector.engine.match.better_version`), ``excludes`` then ``implies``,
and technologies that ``require`` another one (or a category) tried once that one is found
anywhere on the site.  Here:

* every page is matched on its own (the same pattern matches as ``Engine.detect``);
* a pattern (technology, kind, name, regex) adds its confidence once per site: the sum of
  its matches on the page where that sum is highest (the earliest such page).  On one page
  every match counts, as the reference engine's one-page resolution counts them, so
  ``detect_site([page])`` and ``detect(page)`` agree.  Its matches on the other pages
  still offer versions and evidence (marked ``"counted": false``);
* ``excludes``, ``implies``, ``requires`` and ``requiresCategory`` are resolved over the
  union of the pages (a technology required on page B makes a dependent match on page A
  valid), ``requires`` round after round until nothing changes;
* evidence names its page (``page``); the evidence that counted comes first.

Where this departs from the reference driver, on purpose: the driver keeps only the first
detection of a (technology, regex) even within one page, and with it that detection's
version; here one page resolves exactly as the reference engine's one-page analysis (which
the conformance bench checks), and every page's matches offer their versions.  Confidence,
excludes, implies and requires do not depend on the order of the pages; the version does
only between candidates of equal length (the first, in page order, is kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from detector.engine.match import SOURCE_NAMES, Evidence, _Hit, _Resolved
from detector.engine.network import NetworkFacts
from detector.engine.page import Page, ParsedPage
from detector.engine.verdict import MAX_EVIDENCE, SiteDetection

if TYPE_CHECKING:
    from detector.engine.match import Engine

_Hits = dict[int, list[_Hit]]


def detect_site(
    engine: Engine, pages: Iterable[Page | ParsedPage], network: NetworkFacts | None = None
) -> list[SiteDetection]:
    """One SiteDetection per technology found on the site's pages and its DNS/TLS facts, by name.

    The facts count as one more page: their matches join the pages' before ``excludes``,
    ``implies`` and ``requires`` are resolved, so a DNS-only technology can imply, and be
    required by, what the pages show.
    """
    # One page at a time: its DOM is dropped before the next page is parsed.
    per_page = [engine._page_hits(page) for page in pages]
    if network:
        per_page.append((engine._fact_hits(network), {}))
    hits = combine_pages([h for h, _ in per_page])
    dom_hits = combine_pages([d for _, d in per_page])
    resolved = engine._resolve_with_requirements(hits, dom_hits)
    verdicts = [site_detection(engine, r) for r in resolved]
    if any(v.tier != "static" for v in verdicts):
        verdicts = _implied_tiers(verdicts)
    return sorted(verdicts, key=lambda v: v.technology.lower())


def _pattern_key(tech: int, hit: _Hit) -> tuple[int, str, str, str]:
    return tech, hit.kind, hit.key, hit.pattern


def combine_pages(pages: list[_Hits]) -> _Hits:
    """The hits of several pages as one page's, each pattern's confidence counted once.

    A technology's hits keep page order (page 1's, then page 2's...), each page's in
    evaluation order, so the version choice is the one-page rule applied over the site.
    """
    if len(pages) == 1:
        return pages[0]
    best: dict[tuple[int, str, str, str], tuple[int, int]] = {}  # pattern -> (sum, page)
    for p, hits in enumerate(pages):
        sums: dict[tuple[int, str, str, str], int] = {}
        for tech, tech_hits in hits.items():
            for hit in tech_hits:
                key = _pattern_key(tech, hit)
                sums[key] = sums.get(key, 0) + hit.confidence
        for key, total in sums.items():
            kept = best.get(key)
            if kept is None or total > kept[0]:
                best[key] = (total, p)
    out: _Hits = {}
    for p, hits in enumerate(pages):
        for tech, tech_hits in hits.items():
            for hit in tech_hits:
                hit.counted = best[_pattern_key(tech, hit)][1] == p
            out.setdefault(tech, []).extend(tech_hits)
    return out


def site_detection(engine: Engine, r: _Resolved) -> SiteDetection:
    """The verdict row for one resolved technology (evidence capped at MAX_EVIDENCE)."""
    tech = engine._techs[r.tech]
    evidence: list[dict[str, Any]] = []
    for hit in sorted(r.hits, key=lambda h: not h.counted):  # stable: counted ones first
        if len(evidence) >= MAX_EVIDENCE:
            break
        ev = Evidence(SOURCE_NAMES.get(hit.kind, hit.kind), hit.pattern, hit.match, hit.url, hit.key, hit.version,
                      hit.confidence, weak=hit.weak, value=hit.value, tier=hit.tier)
        evidence.append({"page": hit.url, **ev.to_dict(), **({} if hit.counted else {"counted": False})})
    for name in r.implied_by:
        if len(evidence) < MAX_EVIDENCE:
            evidence.append({"page": r.page, **Evidence("implied", "", name, confidence=r.confidence).to_dict()})
    rendered = bool(r.hits) and all(h.tier == "rendered" for h in r.hits)
    return SiteDetection(tech.name, r.version or None, r.confidence, tech.categories, tuple(evidence),
                         "rendered" if rendered else "static")


def _implied_tiers(verdicts: list[SiteDetection]) -> list[SiteDetection]:
    """A technology known only by implication is rendered-only when every implier is."""
    tiers = {v.technology: v.tier for v in verdicts}
    out = []
    for v in verdicts:
        impliers = [e["match"] for e in v.evidence if e.get("source") == "implied"]
        if impliers and len(impliers) == len(v.evidence) and all(tiers.get(n) == "rendered" for n in impliers):
            v = replace(v, tier="rendered")
        out.append(v)
    return out
