"""Scans: what a crawl writes (scans, domains, detections with history, runs) and reads back.

Every write runs in one transaction (:func:`detector.store.transaction.transaction`); the
:class:`~detector.store.store.Store` is how commands reach these functions.  Times are
ISO-8601 UTC text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from detector.engine.signatures import slugify
from detector.errors import EX_CANTCREAT, DetectorError
from detector.store.history import DEFAULT_MISS_THRESHOLD, Stored, compare
from detector.store.transaction import transaction
from detector.timestamps import utc_now

if TYPE_CHECKING:
    from detector.engine.verdict import SiteDetection

#: Every error kind a scan can record, with what it means (README documents the same list).
ERROR_KINDS: dict[str, str] = {
    "dns": "the name does not resolve (no such domain, or DNS failed)",
    "timeout": "no answer within --timeout, after retries",
    "tls": "the HTTPS handshake failed and nothing listens for plain HTTP (port 80 refused)",
    "refused": "the server refused the connection (nothing listens on port 443 or 80)",
    "http_4xx": "the homepage answered with a 4xx status (403, 404, 410...)",
    "http_5xx": "the homepage answered with a 5xx status (500, 502, 503...)",
    "redirect_loop": "redirects went round in a circle or past the redirect limit",
    "offsite": "the homepage redirected to another registered domain (final_url says where)",
    "too_large": "the response was bigger than the maximum body size",
    "not_html": "the homepage is not an HTML page (an image, a PDF, a binary file)",
    "robots": "robots.txt forbids fetching the homepage (use --ignore-robots to override)",
    "connection_lost": "the connection closed or was reset before the response was complete",
    "bad_response": "the server's answer is not HTTP (garbage, another protocol, malformed headers)",
    "bad_redirect": "the homepage redirected to a URL that is not http(s) (file:, data:, javascript:) or nowhere",
    "blocked_address": "the homepage or a redirect led to a private, loopback, link-local or metadata address "
    "(the message names it); nothing was sent there (use --allow-private for intranet inventories)",
    "other": "any other failure; error_message has the details",
}


class StorageError(DetectorError):
    """The database cannot be opened, migrated or written."""


class ReadOnlyDatabaseError(StorageError):
    """The database (or its folder) cannot be written by this user: exit 73 (EX_CANTCREAT)."""

    exit_code = EX_CANTCREAT


def read_only_message(path: str | Path, reason: object) -> str:
    """What to do about a database SQLite refuses to write."""
    return (f"{path}: the database is read-only for this user (SQLite: {reason}). "
            "Make the file and its folder writable (chmod u+w), or pick another --db; nothing was written.")


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
    #: Extra pages whose redirects left the site (an SSO login): recorded, never in the verdict.
    pages_offsite: int = 0
    #: Extra pages robots.txt forbids: not fetched, and no reason for a partial scan.
    pages_blocked: int = 0
    #: False when the engine did not run (``--no-detect``): nothing is learned about detections.
    detected: bool = True
    #: How the rendered tier went (None: not asked; see detector.crawl.render.Snapshot) and why.
    render: str | None = None
    render_note: str = ""
    #: How the DNS lookups ended (see :data:`detector.crawl.dns.DNS_STATUSES`); None: unknown.
    dns_status: str | None = None
    #: JSON {record type: "kind: message"} for each record type without records.
    dns_errors: str | None = None
    #: The issuer of the homepage's https certificate (None: not fetched over https).
    cert_issuer: str | None = None

    @property
    def unchecked_sources(self) -> frozenset[str]:
        """Evidence sources this scan could not look at: ``dns`` unless every record type
        answered, ``cert_issuer`` without an https certificate.  Detections that rest on
        them are not missed (see :func:`detector.store.history.compare`)."""
        out = set()
        if self.dns_status != "ok":
            out.add("dns")
        if not self.cert_issuer:
            out.add("cert_issuer")
        return frozenset(out)

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
    once_per_run: bool = False,
) -> int:
    """Write scans, domains, detections and change events in one transaction; return how many scans.

    ``known``: the technologies the scans' signature library can detect (None: all); only
    those can be missed (see :func:`detector.store.history.compare`).  ``once_per_run``: skip
    a scan whose run already has a scan of that domain (a writer replaying results it had
    committed before it was killed stores nothing twice); the count leaves skipped ones out.
    """
    n = 0
    try:
        with transaction(db) as conn:
            for r in results:
                if once_per_run and conn.execute(
                    "SELECT 1 FROM scans WHERE run_id = ? AND domain = ? LIMIT 1", (r.run_id, r.domain)
                ).fetchone():
                    continue
                _record_one(conn, r, miss_threshold, known)
                n += 1
    except sqlite3.DatabaseError as exc:
        if "readonly database" in str(exc).lower():
            raise ReadOnlyDatabaseError(read_only_message(db.conn.execute("PRAGMA database_list").fetchone()[2],
                                                          exc)) from None
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
    ok_at = r.finished_at if r.status == "ok" else None
    # The domain first: scans and detections name it (foreign keys, migration 10).
    conn.execute(_UPSERT_DOMAIN, (r.domain, r.started_at, r.finished_at, r.status, ok_at))
    cursor = conn.execute(
        "INSERT INTO scans (run_id, domain, started_at, finished_at, status, error_kind, "
        "error_message, http_status, final_url, offsite, pages, signatures_version, pages_failed, counted, "
        "pages_offsite, pages_blocked, dns_status, dns_errors, cert_issuer, render, render_note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            r.pages_offsite,
            r.pages_blocked,
            r.dns_status,
            r.dns_errors,
            r.cert_issuer,
            r.render,
            r.render_note or None,
        ),
    )
    scan_id = cursor.lastrowid
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
    stored: dict[str, Stored] = {}
    unchecked = r.unchecked_sources
    keep: set[str] = set()  # resting on evidence this scan could not look at: never missed
    for row in conn.execute(
        "SELECT technology, version, status, miss_count, evidence FROM detections WHERE domain = ?", (r.domain,)
    ):
        stored[row[0]] = Stored(row[0], row[1], row[2], row[3])
        if row[2] == "active" and unchecked and evidence_sources(row[4]) & unchecked:
            keep.add(row[0])
    plan = compare(
        r.domain,
        stored,
        r.detections,
        at=r.finished_at,
        counts_misses=counted,
        miss_threshold=miss_threshold,
        known=known,
        keep=keep,
    )
    by_name = {d.technology: d for d in r.detections}
    at = r.finished_at
    if plan.inserted:
        # A technology the mirrored library lacks (none mirrored yet, or a detection from
        # another library) gets its row, marked not in the library, so the detection keeps it.
        conn.executemany(
            "INSERT INTO technologies (name, categories, slug, in_library) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (name) DO NOTHING",
            [(name, _categories(by_name[name]), slugify(name)) for name in plan.inserted],
        )
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


def evidence_sources(evidence: str | None) -> frozenset[str]:
    """The sources (``html``, ``dns``...) of a stored detection's evidence JSON.

    >>> sorted(evidence_sources('[{"source": "dns", "key": "MX"}, {"source": "html"}]'))
    ['dns', 'html']
    >>> evidence_sources("not json")
    frozenset()
    """
    try:
        items = json.loads(evidence or "[]")
    except ValueError:
        return frozenset()
    if not isinstance(items, list):
        return frozenset()
    return frozenset(str(e.get("source")) for e in items if isinstance(e, dict) and e.get("source"))


def _categories(d: SiteDetection) -> str:
    return json.dumps(list(d.categories))


def _evidence(d: SiteDetection) -> str:
    return json.dumps(list(d.evidence), ensure_ascii=False)


def start_run(
    db: sqlite_utils.Database,
    run_id: str,
    command: str,
    *,
    planned: int | None,
    options: Mapping[str, Any],
    resume: bool = False,
) -> None:
    """Record that a run began (status ``running`` until :func:`finish_run`).

    ``resume``: a run already recorded (its writer was stopped and started again) is
    ``running`` again under this process, its start time and options kept.
    """
    import os

    upsert = (" ON CONFLICT (id) DO UPDATE SET status = 'running', finished_at = NULL, pid = excluded.pid, "
              "domains_planned = COALESCE(excluded.domains_planned, runs.domains_planned)") if resume else ""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO runs (id, command, started_at, status, pid, domains_planned, options) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?)" + upsert,
            (run_id, command, utc_now(), os.getpid(), planned, json.dumps(dict(options), sort_keys=True)),
        )


def finish_run(db: sqlite_utils.Database, run_id: str, status: str = "done") -> None:
    """Record a run's end: its status and the domains it scanned ok and failed."""
    with transaction(db):
        db.conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, "
            "domains_ok = (SELECT count(*) FROM scans WHERE run_id = runs.id AND status = 'ok'), "
            "domains_failed = (SELECT count(*) FROM scans WHERE run_id = runs.id AND status != 'ok') "
            "WHERE id = ?",
            (utc_now(), status, run_id),
        )


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A past run and the options it recorded (``runs.options``)."""

    id: str
    command: str
    started_at: str
    options: dict[str, Any]


def last_run_options(db: sqlite_utils.Database, commands: Iterable[str] = ("crawl",)) -> RecordedRun | None:
    """The newest run of one of ``commands`` that recorded its options, or None."""
    names = list(commands)
    if not names or not db["runs"].exists():
        return None
    marks = ", ".join("?" for _ in names)
    for row in db.query(
        f"SELECT id, command, started_at, options FROM runs WHERE command IN ({marks}) AND options IS NOT NULL "
        "ORDER BY started_at DESC, id DESC LIMIT 1",
        names,
    ):
        try:
            options = json.loads(row["options"])
        except (TypeError, ValueError):
            return None
        if isinstance(options, dict):
            return RecordedRun(row["id"], row["command"], row["started_at"], options)
    return None


def close_dead_runs(db: sqlite_utils.Database) -> list[str]:
    """Mark runs still ``running`` as ``interrupted``; call it holding the lock (they are dead)."""
    dead = [row["id"] for row in db.query("SELECT id FROM runs WHERE status = 'running' ORDER BY started_at")]
    for run_id in dead:
        finish_run(db, run_id, "interrupted")
    return dead


def add_domains(db: sqlite_utils.Database, domains: Iterable[str], *, now: str | None = None) -> None:
    """Register domains (``added_at`` is kept for ones already known)."""
    stamp = now or utc_now()
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO domains (domain, added_at) VALUES (?, ?) ON CONFLICT (domain) DO NOTHING",
            ((d, stamp) for d in domains),
        )


def mirror_library(db: sqlite_utils.Database, library: Any) -> None:
    """Copy the signature library's technologies and categories into their tables.

    Technologies are updated in place (detections name them: migration 10's foreign keys).
    One the library no longer has stays while a detection names it, with ``in_library = 0``;
    otherwise it is deleted.
    """
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
            (
                sig.name,
                json.dumps(list(sig.categories)),
                json.dumps(tech_groups),
                info.get("website"),
                info.get("description"),
                _flag(info.get("saas")),
                _flag(info.get("oss")),
                json.dumps(list(pricing)) if pricing else None,
                info.get("cpe"),
                slugify(sig.name),
                info.get("icon"),
            )
        )
    cat_rows = [
        (c.id, c.name, c.priority, json.dumps([str(g) for g in cat_groups.get(c.name.lower(), [])]))
        for c in cats
    ]
    with transaction(db) as conn:
        conn.execute("UPDATE technologies SET in_library = 0")
        conn.executemany(
            "INSERT INTO technologies (name, categories, groups, website, description, saas, oss, pricing, cpe, "
            "slug, icon, in_library) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET categories = excluded.categories, groups = excluded.groups, "
            "website = excluded.website, description = excluded.description, saas = excluded.saas, "
            "oss = excluded.oss, pricing = excluded.pricing, cpe = excluded.cpe, slug = excluded.slug, "
            "icon = excluded.icon, in_library = 1",
            tech_rows,
        )
        conn.execute("DELETE FROM technologies WHERE in_library = 0 "
                     "AND name NOT IN (SELECT DISTINCT technology FROM detections)")
        conn.execute("DELETE FROM categories")
        conn.executemany("INSERT INTO categories (id, name, priority, groups) VALUES (?, ?, ?, ?)", cat_rows)


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
    """Counts for one run: domains ok/failed, failures by error kind, technologies, top N, and
    how the rendered tier went (``render``: scans by outcome, ``skipped`` over the budget)."""
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
    render = {r["render"]: r["n"] for r in db.query(
        "SELECT render, count(*) AS n FROM scans WHERE run_id = ? AND render IS NOT NULL GROUP BY render "
        "ORDER BY n DESC, render", [run_id])}
    return {
        "run_id": run_id,
        "domains_ok": ok,
        "domains_failed": failed,
        "failed_by_kind": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "pages": pages,
        "technologies": techs,
        "top_technologies": [{"technology": r["technology"], "domains": r["domains"]} for r in top_rows],
        "render": render,
    }

