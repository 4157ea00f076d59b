"""SQLite storage: the schema (numbered migrations), recording scans, reading them back.

Everything goes through sqlite-utils; times are ISO-8601 UTC text.  Later issues append
migrations to :data:`MIGRATIONS`; a database remembers which ones it has applied in
``_migrations``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from detector.errors import DetectorError
from detector.store.history import DEFAULT_MISS_THRESHOLD, Seen, Stored, compare

if TYPE_CHECKING:
    from detector.engine.verdict import SiteDetection

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


def _m003_history(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE detections ADD COLUMN miss_count INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE scans ADD COLUMN pages_failed INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE scans ADD COLUMN counted INTEGER NOT NULL DEFAULT 0")
    db.table("detections").create_index(["status", "last_seen"])
    db.table("domains").create_index(["last_ok_at"])
    db.execute(
        """
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            domain TEXT NOT NULL,
            technology TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('added', 'removed', 'version_changed')),
            old_version TEXT,
            new_version TEXT,
            at TEXT NOT NULL,
            scan_id INTEGER REFERENCES scans(id),
            run_id TEXT
        )
        """
    )
    db.table("changes").create_index(["at"])
    db.table("changes").create_index(["domain", "technology"])
    db.table("changes").create_index(["technology", "at"])
    db.table("runs").create(
        {
            "id": str,
            "command": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "pid": int,
            "domains_planned": int,
            "domains_ok": int,
            "domains_failed": int,
            "options": str,
        },
        pk="id",
    )
    # Detections recorded before history existed get the event that created them, so every
    # active detection has an ``added`` event (without a scan id: it predates the table).
    db.execute(
        "INSERT INTO changes (domain, technology, kind, old_version, new_version, at) "
        "SELECT domain, technology, 'added', NULL, version, first_seen FROM detections "
        "ORDER BY first_seen, domain, technology"
    )
    db.execute(
        "INSERT INTO changes (domain, technology, kind, old_version, new_version, at) "
        "SELECT domain, technology, 'removed', version, NULL, removed_at FROM detections "
        "WHERE status = 'removed' AND removed_at IS NOT NULL"
    )


Migration = Callable[[sqlite_utils.Database], None]

#: Numbered migrations, applied in order once each.  Append; never edit a released one.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: domains, scans, detections, technologies, categories", _m001_initial),
    (2, "segmentation: accounts, cohorts, cohort_members", _m002_segmentation),
    (3, "history: changes, runs, detections.miss_count, scans.pages_failed/counted", _m003_history),
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
    #: Extra pages that failed for a reason that may pass (timeout, 5xx): the scan is partial.
    pages_failed: int = 0
    #: False when the engine did not run (``--no-detect``): nothing is learned about detections.
    detected: bool = True

    @property
    def counts_misses(self) -> bool:
        """True when not seeing a technology means something: ok, complete, detection on."""
        return self.status == "ok" and self.detected and self.pages_failed == 0


# ---------------------------------------------------------------------------- writing

_UPSERT_DOMAIN = """
INSERT INTO domains (domain, added_at, last_scanned_at, last_status, last_ok_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (domain) DO UPDATE SET
    last_scanned_at = excluded.last_scanned_at,
    last_status = excluded.last_status,
    last_ok_at = COALESCE(excluded.last_ok_at, domains.last_ok_at)
"""


def record_scans(
    db: sqlite_utils.Database,
    results: Iterable[ScanResult],
    *,
    miss_threshold: int = DEFAULT_MISS_THRESHOLD,
    known: Container[str] | None = None,
) -> int:
    """Write scans, domains, detections and change events in one transaction; return how many scans.

    ``known``: the technologies the scans' signature library can detect (None: all); only
    those can be missed (see :func:`detector.store.history.compare`).
    """
    n = 0
    conn = db.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
        for r in results:
            _record_one(conn, r, miss_threshold, known)
            n += 1
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StorageError(f"cannot write to the database ({exc}); check disk space and permissions") from None
    return n


def record_scan(
    db: sqlite_utils.Database,
    result: ScanResult,
    *,
    miss_threshold: int = DEFAULT_MISS_THRESHOLD,
    known: Container[str] | None = None,
) -> None:
    """Write one scan (see :func:`record_scans`)."""
    record_scans(db, [result], miss_threshold=miss_threshold, known=known)


def _record_one(conn: sqlite3.Connection, r: ScanResult, miss_threshold: int, known: Container[str] | None) -> None:
    counted = r.counts_misses
    cursor = conn.execute(
        "INSERT INTO scans (run_id, domain, started_at, finished_at, status, error_kind, "
        "error_message, http_status, final_url, offsite, pages, signatures_version, pages_failed, counted) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            r.pages_failed,
            int(counted),
        ),
    )
    scan_id = cursor.lastrowid
    ok_at = r.finished_at if r.status == "ok" else None
    conn.execute(_UPSERT_DOMAIN, (r.domain, r.started_at, r.finished_at, r.status, ok_at))
    if r.status != "ok" or not r.detected:
        return  # a failed scan, or one without detection, says nothing about technologies
    _apply_detections(conn, r, scan_id, counted, miss_threshold, known)


def _apply_detections(
    conn: sqlite3.Connection,
    r: ScanResult,
    scan_id: int | None,
    counted: bool,
    miss_threshold: int,
    known: Container[str] | None,
) -> None:
    stored = {
        row[0]: Stored(row[0], row[1], row[2], row[3])
        for row in conn.execute(
            "SELECT technology, version, status, miss_count FROM detections WHERE domain = ?", (r.domain,)
        )
    }
    plan = compare(
        r.domain,
        stored,
        (Seen(d.technology, d.version) for d in r.detections),
        at=r.finished_at,
        counts_misses=counted,
        miss_threshold=miss_threshold,
        known=known,
    )
    by_name = {d.technology: d for d in r.detections}
    at = r.finished_at
    for name in plan.inserted:
        d = by_name[name]
        conn.execute(
            "INSERT INTO detections (domain, technology, version, confidence, categories, first_seen, "
            "last_seen, evidence, status, removed_at, miss_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, 0)",
            (r.domain, name, d.version, d.confidence, _categories(d), at, at, _evidence(d)),
        )
    for name in (*plan.revived, *plan.seen):
        d = by_name[name]
        # first_seen is deliberately absent: it survives every later scan.  A version the
        # scan did not see (None) keeps the one known before.
        conn.execute(
            "UPDATE detections SET version = COALESCE(?, version), confidence = ?, categories = ?, "
            "last_seen = ?, evidence = ?, status = 'active', removed_at = NULL, miss_count = 0 "
            "WHERE domain = ? AND technology = ?",
            (d.version, d.confidence, _categories(d), at, _evidence(d), r.domain, name),
        )
    for name, misses in plan.missed:
        conn.execute(
            "UPDATE detections SET miss_count = ? WHERE domain = ? AND technology = ?", (misses, r.domain, name)
        )
    for name in plan.removed:
        conn.execute(
            "UPDATE detections SET status = 'removed', removed_at = ?, miss_count = miss_count + 1 "
            "WHERE domain = ? AND technology = ?",
            (at, r.domain, name),
        )
    conn.executemany(
        "INSERT INTO changes (domain, technology, kind, old_version, new_version, at, scan_id, run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.domain, c.technology, c.kind, c.old_version, c.new_version, c.at, scan_id, r.run_id) for c in plan.changes],
    )


def _categories(d: SiteDetection) -> str:
    return json.dumps(list(d.categories))


def _evidence(d: SiteDetection) -> str:
    return json.dumps(list(d.evidence), ensure_ascii=False)


def start_run(
    db: sqlite_utils.Database, run_id: str, command: str, *, planned: int | None, options: Mapping[str, Any]
) -> None:
    """Record that a run began (status ``running`` until :func:`finish_run`)."""
    import os

    with db.conn:
        db.conn.execute(
            "INSERT INTO runs (id, command, started_at, status, pid, domains_planned, options) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, command, utc_now(), os.getpid(), planned, json.dumps(dict(options), sort_keys=True)),
        )


def finish_run(db: sqlite_utils.Database, run_id: str, status: str = "done") -> None:
    """Record a run's end: its status and the domains it scanned ok and failed."""
    with db.conn:
        db.conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, "
            "domains_ok = (SELECT count(*) FROM scans WHERE run_id = runs.id AND status = 'ok'), "
            "domains_failed = (SELECT count(*) FROM scans WHERE run_id = runs.id AND status != 'ok') "
            "WHERE id = ?",
            (utc_now(), status, run_id),
        )


def close_dead_runs(db: sqlite_utils.Database) -> list[str]:
    """Mark runs still ``running`` as ``interrupted``; call it holding the lock (they are dead)."""
    dead = [row["id"] for row in db.query("SELECT id FROM runs WHERE status = 'running' ORDER BY started_at")]
    for run_id in dead:
        finish_run(db, run_id, "interrupted")
    return dead


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

