"""SQLite storage: the schema (numbered migrations), recording scans, reading them back.

Everything goes through sqlite-utils; times are ISO-8601 UTC text.  Later issues append
migrations to :data:`MIGRATIONS`; a database remembers which ones it has applied in
``_migrations``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from detector.errors import DetectorError

if TYPE_CHECKING:
    from detector.verdict import SiteDetection

#: Every error kind a scan can record, with what it means (README documents the same list).
ERROR_KINDS: dict[str, str] = {
    "dns": "the name does not resolve (no such domain, or DNS failed)",
    "timeout": "no answer within --timeout, after retries",
    "tls": "the HTTPS handshake failed and plain HTTP did not work either",
    "refused": "the server refused the connection (nothing listens on port 443 or 80)",
    "http_4xx": "the homepage answered with a 4xx status (403, 404, 410...)",
    "http_5xx": "the homepage answered with a 5xx status (500, 502, 503...)",
    "redirect_loop": "redirects went round in a circle or past the redirect limit",
    "offsite": "the homepage redirected to another registered domain (final_url says where)",
    "too_large": "the response was bigger than the maximum body size",
    "not_html": "the homepage is not an HTML page (an image, a PDF, a binary file)",
    "robots": "robots.txt forbids fetching the homepage (use --ignore-robots to override)",
    "other": "any other failure; error_message has the details",
}


class StorageError(DetectorError):
    """The database cannot be opened, migrated or written."""


def utc_now() -> str:
    """Current time as ISO-8601 UTC text with seconds, e.g. ``2026-11-23T02:40:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- migrations


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.table("domains").create(
        {
            "domain": str,
            "added_at": str,
            "last_scanned_at": str,
            "last_status": str,
            "last_ok_at": str,
        },
        pk="domain",
    )
    db.table("scans").create(
        {
            "id": int,
            "run_id": str,
            "domain": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "error_kind": str,
            "error_message": str,
            "http_status": int,
            "final_url": str,
            "offsite": int,
            "pages": int,
            "signatures_version": str,
        },
        pk="id",
    )
    db.table("scans").create_index(["domain", "started_at"])
    db.table("scans").create_index(["run_id"])
    db.execute(
        """
        CREATE TABLE detections (
            domain TEXT NOT NULL,
            technology TEXT NOT NULL,
            version TEXT,
            confidence INTEGER,
            categories TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            evidence TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            removed_at TEXT,
            PRIMARY KEY (domain, technology)
        )
        """
    )
    db.table("detections").create_index(["technology"])
    db.table("technologies").create(
        {
            "name": str,
            "categories": str,
            "groups": str,
            "website": str,
            "description": str,
            "saas": int,
            "oss": int,
            "pricing": str,
            "cpe": str,
        },
        pk="name",
    )
    db.table("categories").create({"id": int, "name": str, "priority": int, "groups": str}, pk="id")


def _m002_segmentation(db: sqlite_utils.Database) -> None:
    # `accounts` grows one column per firmographic CSV column on import (accounts.py).
    # "if not exists": databases segmented before this migration already have the tables.
    db.execute("CREATE TABLE IF NOT EXISTS accounts (domain TEXT PRIMARY KEY, imported_at TEXT)")
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS cohorts (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            description TEXT,
            position INTEGER NOT NULL,
            members INTEGER NOT NULL,
            stale_members INTEGER NOT NULL,
            rules_file TEXT,
            computed_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS cohort_members (
            cohort TEXT NOT NULL REFERENCES cohorts(name),
            domain TEXT NOT NULL,
            tier INTEGER,
            score REAL,
            stale INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL,
            technologies TEXT NOT NULL,
            evidence TEXT NOT NULL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (cohort, domain)
        )
        """
    )
    db.execute("CREATE INDEX IF NOT EXISTS cohort_members_domain ON cohort_members(domain)")


Migration = Callable[[sqlite_utils.Database], None]

#: Numbered migrations, applied in order once each.  Append; never edit a released one.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: domains, scans, detections, technologies, categories", _m001_initial),
    (2, "segmentation: accounts, cohorts, cohort_members", _m002_segmentation),
]


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply pending migrations in order; return the numbers applied."""
    if "_migrations" not in db.table_names():
        db.table("_migrations").create({"id": int, "name": str, "applied_at": str}, pk="id")
    done = {row["id"] for row in db.table("_migrations").rows}
    applied = []
    for number, name, func in MIGRATIONS:
        if number in done:
            continue
        with db.conn:
            func(db)
            db.table("_migrations").insert({"id": number, "name": name, "applied_at": utc_now()})
        applied.append(number)
    return applied


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) a database in WAL mode with every migration applied."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise StorageError(f"{path}: the folder {p.parent} does not exist. Create it or pick another --db.")
    if p.exists() and p.is_dir():
        raise StorageError(f"{path}: is a folder, not a database file. Pick a file name with --db.")
    try:
        conn = sqlite3.connect(str(p), timeout=30, isolation_level=None)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{path}: cannot open or write the database ({exc}). "
            "Check the file is a SQLite database you may write, or pick another --db."
        ) from None
    return db


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one run learned about one domain: outcome, pages and site-level detections."""

    domain: str
    run_id: str
    started_at: str
    finished_at: str
    status: str
    error_kind: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    offsite: bool = False
    pages: int = 0
    signatures_version: str = ""
    detections: tuple[SiteDetection, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------- writing

_UPSERT_DETECTION = """
INSERT INTO detections
    (domain, technology, version, confidence, categories, first_seen, last_seen, evidence,
     status, removed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL)
ON CONFLICT (domain, technology) DO UPDATE SET
    version = excluded.version,
    confidence = excluded.confidence,
    categories = excluded.categories,
    last_seen = excluded.last_seen,
    evidence = excluded.evidence,
    status = 'active',
    removed_at = NULL
"""
# first_seen is deliberately absent from the update list: it survives every later scan.

_UPSERT_DOMAIN = """
INSERT INTO domains (domain, added_at, last_scanned_at, last_status, last_ok_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (domain) DO UPDATE SET
    last_scanned_at = excluded.last_scanned_at,
    last_status = excluded.last_status,
    last_ok_at = COALESCE(excluded.last_ok_at, domains.last_ok_at)
"""


def record_scans(db: sqlite_utils.Database, results: Iterable[ScanResult]) -> int:
    """Write scans, domains and detections in one transaction; return how many scans."""
    n = 0
    conn = db.conn
    try:
        conn.execute("BEGIN")
        for r in results:
            _record_one(conn, r)
            n += 1
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StorageError(f"cannot write to the database ({exc}); check disk space and permissions") from None
    return n


def record_scan(db: sqlite_utils.Database, result: ScanResult) -> None:
    """Write one scan (see :func:`record_scans`)."""
    record_scans(db, [result])


def _record_one(conn: sqlite3.Connection, r: ScanResult) -> None:
    conn.execute(
        "INSERT INTO scans (run_id, domain, started_at, finished_at, status, error_kind, "
        "error_message, http_status, final_url, offsite, pages, signatures_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.run_id,
            r.domain,
            r.started_at,
            r.finished_at,
            r.status,
            r.error_kind,
            r.error_message,
            r.http_status,
            r.final_url,
            int(r.offsite),
            r.pages,
            r.signatures_version,
        ),
    )
    ok_at = r.finished_at if r.status == "ok" else None
    conn.execute(_UPSERT_DOMAIN, (r.domain, r.started_at, r.finished_at, r.status, ok_at))
    for d in r.detections:
        conn.execute(
            _UPSERT_DETECTION,
            (
                r.domain,
                d.technology,
                d.version,
                d.confidence,
                json.dumps(list(d.categories)),
                r.finished_at,
                r.finished_at,
                json.dumps(list(d.evidence), ensure_ascii=False),
            ),
        )


def add_domains(db: sqlite_utils.Database, domains: Iterable[str], *, now: str | None = None) -> None:
    """Register domains (``added_at`` is kept for ones already known)."""
    stamp = now or utc_now()
    with db.conn:
        db.conn.executemany(
            "INSERT INTO domains (domain, added_at) VALUES (?, ?) ON CONFLICT (domain) DO NOTHING",
            ((d, stamp) for d in domains),
        )


def mirror_library(db: sqlite_utils.Database, library: Any) -> None:
    """Copy the signature library's technologies and categories into their tables."""
    groups = getattr(library, "groups", {}) or {}
    cats = list(library.categories.values())
    cat_groups = {c.name.lower(): [groups.get(g, g) if isinstance(g, int) else g for g in c.groups] for c in cats}
    tech_rows = []
    for sig in library.signatures.values():
        info = sig.info or {}
        tech_groups: list[str] = []
        for c in sig.categories:
            for g in cat_groups.get(c.lower(), []):
                if g not in tech_groups:
                    tech_groups.append(str(g))
        pricing = info.get("pricing")
        tech_rows.append(
            {
                "name": sig.name,
                "categories": json.dumps(list(sig.categories)),
                "groups": json.dumps(tech_groups),
                "website": info.get("website"),
                "description": info.get("description"),
                "saas": _flag(info.get("saas")),
                "oss": _flag(info.get("oss")),
                "pricing": json.dumps(list(pricing)) if pricing else None,
                "cpe": info.get("cpe"),
            }
        )
    cat_rows = [
        {
            "id": c.id,
            "name": c.name,
            "priority": c.priority,
            "groups": json.dumps([str(g) for g in cat_groups.get(c.name.lower(), [])]),
        }
        for c in cats
    ]
    with db.conn:
        db.conn.execute("DELETE FROM technologies")
        db.conn.execute("DELETE FROM categories")
        db.table("technologies").insert_all(tech_rows, pk="name", batch_size=500)
        db.table("categories").insert_all(cat_rows, pk="id", batch_size=500)


def _flag(value: Any) -> int | None:
    if value is None:
        return None
    return 1 if value else 0


# ---------------------------------------------------------------------------- reading


def scans_for_run(db: sqlite_utils.Database, run_id: str) -> list[dict[str, Any]]:
    """Scan rows of one run, in the order they were recorded."""
    return list(db.query("SELECT * FROM scans WHERE run_id = ? ORDER BY id", [run_id]))


def detections_for(db: sqlite_utils.Database, domain: str) -> list[dict[str, Any]]:
    """Detection rows of one domain, JSON columns decoded, by technology name."""
    rows = []
    for row in db.query("SELECT * FROM detections WHERE domain = ? ORDER BY technology", [domain]):
        row["categories"] = json.loads(row["categories"] or "[]")
        row["evidence"] = json.loads(row["evidence"] or "[]")
        rows.append(row)
    return rows


def run_summary(db: sqlite_utils.Database, run_id: str, *, top: int = 10) -> dict[str, Any]:
    """Counts for one run: domains ok/failed, failures by error kind, technologies, top N."""
    ok = failed = 0
    kinds: dict[str, int] = {}
    pages = 0
    for row in db.query(
        "SELECT status, error_kind, count(*) AS n, sum(pages) AS p FROM scans WHERE run_id = ? "
        "GROUP BY status, error_kind",
        [run_id],
    ):
        pages += row["p"] or 0
        if row["status"] == "ok":
            ok += row["n"]
        else:
            failed += row["n"]
            kinds[row["error_kind"] or "other"] = kinds.get(row["error_kind"] or "other", 0) + row["n"]
    top_rows = list(
        db.query(
            "SELECT d.technology, count(*) AS domains FROM detections d "
            "JOIN scans s ON s.domain = d.domain AND s.run_id = ? AND s.status = 'ok' "
            "WHERE d.last_seen >= s.started_at GROUP BY d.technology "
            "ORDER BY domains DESC, d.technology LIMIT ?",
            [run_id, top],
        )
    )
    techs = next(
        db.query(
            "SELECT count(DISTINCT d.technology) AS n FROM detections d "
            "JOIN scans s ON s.domain = d.domain AND s.run_id = ? AND s.status = 'ok' "
            "WHERE d.last_seen >= s.started_at",
            [run_id],
        )
    )["n"]
    return {
        "run_id": run_id,
        "domains_ok": ok,
        "domains_failed": failed,
        "failed_by_kind": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "pages": pages,
        "technologies": techs,
        "top_technologies": [{"technology": r["technology"], "domains": r["domains"]} for r in top_rows],
    }

