"""Reading stored technologies back: "technologies of Y" and "domains running X".

What ``detector technologies`` prints, in any of ``detect``'s formats.  Each query uses an
index (the detections key for a domain, ``detections(technology, status, last_seen)`` for a
technology): bench/query.py times them at 1,000,000 detection rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils


@dataclass(frozen=True, slots=True)
class StoredTechnology:
    """One stored detection with what the library says of its technology."""

    name: str
    version: str | None
    confidence: int
    categories: tuple[str, ...]
    first_seen: str
    last_seen: str
    status: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"name": self.name, "version": self.version, "confidence": self.confidence,
                "categories": list(self.categories), "first_seen": self.first_seen, "last_seen": self.last_seen,
                "status": self.status}


@dataclass(frozen=True, slots=True)
class DomainTechnologies:
    """A domain, its last scan and its stored technologies."""

    domain: str
    last_status: str | None
    http_status: int | None
    final_url: str | None
    technologies: tuple[StoredTechnology, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"domain": self.domain, "last_status": self.last_status, "http_status": self.http_status,
                "final_url": self.final_url, "technologies": [t.to_dict() for t in self.technologies]}


_INFO = ("description", "website", "icon", "cpe")


def stored_technologies(
    db: sqlite_utils.Database,
    domains: Iterable[str] = (),
    *,
    technology: str | None = None,
    removed: bool = False,
) -> list[DomainTechnologies]:
    """Domains (all of them, or ``domains``) with their active technologies (``removed``: the
    removed ones too); ``technology``: only domains that run it (any case), by domain name."""
    wanted = [d.strip().lower() for d in domains]
    status = "" if removed else " AND d.status = 'active'"
    if technology is not None:
        names = [r[0] for r in db.execute("SELECT name FROM technologies WHERE name = ? COLLATE NOCASE "
                                          "UNION SELECT DISTINCT technology FROM detections "
                                          "WHERE technology = ? COLLATE NOCASE", [technology, technology])]
        marks = ", ".join("?" for _ in names) or "NULL"
        picked = [r[0] for r in db.execute(
            f"SELECT DISTINCT d.domain FROM detections d WHERE d.technology IN ({marks}){status}", names)]
        wanted = sorted(set(picked) & set(wanted)) if wanted else sorted(picked)
    elif not wanted:
        wanted = [r[0] for r in db.execute("SELECT domain FROM domains ORDER BY domain")]
    out = []
    for domain in wanted:
        last = db.execute(
            "SELECT dm.last_status, s.http_status, s.final_url FROM domains dm LEFT JOIN scans s "
            "ON s.id = (SELECT max(id) FROM scans WHERE domain = dm.domain) WHERE dm.domain = ?", [domain]
        ).fetchone()
        if last is None:
            continue
        techs = tuple(
            StoredTechnology(r[0], r[1], int(r[2] or 0), tuple(json.loads(r[3] or "[]")), r[4], r[5], r[6],
                             {k: v for k, v in zip(_INFO, r[7:]) if v is not None})
            for r in db.execute(
                "SELECT d.technology, d.version, d.confidence, d.categories, d.first_seen, d.last_seen, d.status, "
                "t.description, t.website, t.icon, t.cpe FROM detections d "
                f"LEFT JOIN technologies t ON t.name = d.technology WHERE d.domain = ?{status} "
                "ORDER BY d.technology COLLATE NOCASE", [domain])
        )
        out.append(DomainTechnologies(domain, last[0], last[1], last[2], techs))
    return out


def category_ids(db: sqlite_utils.Database) -> dict[str, int]:
    """Category name -> id, from the mirrored library."""
    return {r[0]: int(r[1]) for r in db.execute("SELECT name, id FROM categories")}
