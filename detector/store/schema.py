"""The schema: numbered migrations, each applied once, atomically, under the database's lock.

A database remembers the migrations it has applied in ``_migrations``.  Each migration runs in
its own ``BEGIN IMMEDIATE`` transaction together with its ``_migrations`` row, so a migration
killed half-way leaves nothing behind and simply runs again at the next open.  Append to
:data:`MIGRATIONS`; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from detector.engine.signatures import slugify
from detector.store.transaction import transaction
from detector.timestamps import utc_now


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


def _m004_page_outcomes(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE scans ADD COLUMN pages_offsite INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE scans ADD COLUMN pages_blocked INTEGER NOT NULL DEFAULT 0")


#: How old a detection's last sighting may be before the views call it stale (as ``status``).
STALE_DAYS = 30

_VIEWS = {
    "domain_technologies": f"""
        SELECT d.domain, d.technology, d.version, d.categories, d.confidence, d.first_seen,
               d.last_seen, d.status,
               d.last_seen < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-{STALE_DAYS} days') AS stale
        FROM detections d""",
    "technology_counts": """
        SELECT t.name AS technology, json_extract(t.categories, '$[0]') AS category,
               (SELECT count(*) FROM detections d WHERE d.technology = t.name AND d.status = 'active')
                   AS active_domains,
               (SELECT count(*) FROM changes c WHERE c.technology = t.name AND c.kind = 'added'
                   AND c.at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')) AS added_30d,
               (SELECT count(*) FROM changes c WHERE c.technology = t.name AND c.kind = 'removed'
                   AND c.at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days')) AS removed_30d
        FROM technologies t
        WHERE EXISTS (SELECT 1 FROM detections d WHERE d.technology = t.name)""",
    "category_counts": """
        SELECT c.value AS category, count(DISTINCT d.technology) AS technologies,
               count(DISTINCT d.domain) AS active_domains
        FROM detections d, json_each(d.categories) c
        WHERE d.status = 'active'
        GROUP BY c.value""",
    "domain_summary": """
        SELECT dm.domain, dm.last_scanned_at, dm.last_status, dm.last_ok_at,
               (SELECT count(*) FROM detections d WHERE d.domain = dm.domain AND d.status = 'active')
                   AS technologies,
               (SELECT group_concat(m.cohort, ', ') FROM cohort_members m WHERE m.domain = dm.domain)
                   AS cohorts,
               (SELECT min(m.tier) FROM cohort_members m WHERE m.domain = dm.domain) AS tier
        FROM domains dm""",
}


def _m005_views(db: sqlite_utils.Database) -> None:
    # Views for sqlite-utils and Datasette users: plain SQL over the tables, nothing stored twice.
    for name, sql in _VIEWS.items():
        db.execute(f"DROP VIEW IF EXISTS {name}")
        db.execute(f"CREATE VIEW {name} AS {sql.strip()}")
    db.execute("CREATE INDEX IF NOT EXISTS detections_technology_status ON detections(technology, status)")
    db.execute("CREATE INDEX IF NOT EXISTS changes_kind_at ON changes(kind, at)")


def _m006_segment_history(db: sqlite_utils.Database) -> None:
    # Several named segmentations side by side (`segment --name`), and every run kept:
    # `cohorts` and `cohort_members` gain `segmentation` (part of their keys) and `run_id`;
    # `segment_runs` and `segment_accounts` (one row per account and run) are the history
    # that `segment diff` compares and `--export` reads.
    db.execute("DROP VIEW IF EXISTS domain_summary")  # it reads cohort_members, rebuilt below
    db.execute(
        """
        CREATE TABLE segment_runs (
            id INTEGER PRIMARY KEY,
            segmentation TEXT NOT NULL,
            rules_file TEXT,
            rules_sha256 TEXT,
            computed_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            accounts INTEGER NOT NULL,
            in_market INTEGER NOT NULL,
            in_cohort INTEGER NOT NULL,
            tiered INTEGER NOT NULL,
            funnel TEXT NOT NULL,
            forced INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX segment_runs_segmentation ON segment_runs(segmentation, id)")
    db.execute(
        """
        CREATE TABLE segment_accounts (
            run_id INTEGER NOT NULL REFERENCES segment_runs(id),
            domain TEXT NOT NULL,
            primary_cohort TEXT NOT NULL,
            cohorts TEXT NOT NULL,
            stale_cohorts TEXT NOT NULL,
            tier INTEGER,
            score REAL,
            score_breakdown TEXT NOT NULL,
            reasons TEXT NOT NULL,
            technologies TEXT NOT NULL,
            PRIMARY KEY (run_id, domain)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE cohorts_new (
            segmentation TEXT NOT NULL DEFAULT 'default',
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            description TEXT,
            position INTEGER NOT NULL,
            members INTEGER NOT NULL,
            stale_members INTEGER NOT NULL,
            rules_file TEXT,
            computed_at TEXT NOT NULL,
            run_id INTEGER REFERENCES segment_runs(id),
            PRIMARY KEY (segmentation, name)
        )
        """
    )
    db.execute(
        "INSERT INTO cohorts_new (name, kind, description, position, members, stale_members, "
        "rules_file, computed_at) SELECT name, kind, description, position, members, "
        "stale_members, rules_file, computed_at FROM cohorts"
    )
    db.execute(
        """
        CREATE TABLE cohort_members_new (
            segmentation TEXT NOT NULL DEFAULT 'default',
            cohort TEXT NOT NULL,
            domain TEXT NOT NULL,
            tier INTEGER,
            score REAL,
            stale INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL,
            technologies TEXT NOT NULL,
            evidence TEXT NOT NULL,
            computed_at TEXT NOT NULL,
            run_id INTEGER REFERENCES segment_runs(id),
            PRIMARY KEY (segmentation, cohort, domain)
        )
        """
    )
    db.execute(
        "INSERT INTO cohort_members_new (cohort, domain, tier, score, stale, reason, technologies, "
        "evidence, computed_at) SELECT cohort, domain, tier, score, stale, reason, technologies, "
        "evidence, computed_at FROM cohort_members"
    )
    db.execute("DROP TABLE cohort_members")
    db.execute("DROP TABLE cohorts")
    db.execute("ALTER TABLE cohorts_new RENAME TO cohorts")
    db.execute("ALTER TABLE cohort_members_new RENAME TO cohort_members")
    db.execute("CREATE INDEX cohort_members_domain ON cohort_members(domain)")
    db.execute(f"CREATE VIEW domain_summary AS {_VIEWS['domain_summary'].strip()}")
def _m007_dns(db: sqlite_utils.Database) -> None:
    # What the DNS tier and the TLS handshake told each scan: dns_status (ok, partial, failed,
    # off, skipped), dns_errors (JSON {record type: "kind: message"}), cert_issuer.
    db.execute("ALTER TABLE scans ADD COLUMN dns_status TEXT")
    db.execute("ALTER TABLE scans ADD COLUMN dns_errors TEXT")
    db.execute("ALTER TABLE scans ADD COLUMN cert_issuer TEXT")
def _m008_render(db: sqlite_utils.Database) -> None:
    # How the rendered tier went for the scan: NULL (not asked), rendered, timeout, crashed,
    # refused, failed, unavailable; render_note says why it rendered, or what went wrong.
    db.execute("ALTER TABLE scans ADD COLUMN render TEXT")
    db.execute("ALTER TABLE scans ADD COLUMN render_note TEXT")


def _m009_run_domain_index(db: sqlite_utils.Database) -> None:
    # The distributed writer asks "has this run stored this domain?" before each scan (a replayed
    # result must not be stored twice); by run_id alone that is a scan of the whole run.
    db.execute("CREATE INDEX IF NOT EXISTS scans_run_domain ON scans(run_id, domain)")



#: The links migration 10 adds (table -> column -> parent table and key).  Datasette shows them
#: as links; SQLite refuses a row that names an unknown parent (``PRAGMA foreign_keys`` is on
#: in every connection a Store opens).
FOREIGN_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "scans": {"domain": ("domains", "domain")},
    "detections": {"domain": ("domains", "domain"), "technology": ("technologies", "name")},
}


def _m010_foreign_keys(db: sqlite_utils.Database) -> None:
    # SQLite adds a foreign key only by rebuilding the table.  Every column (whatever earlier
    # migrations added), every row, index and view is kept; migrate() runs this with foreign
    # keys off, as SQLite's documented rebuild asks, and checks them before it commits.
    db.execute("ALTER TABLE technologies ADD COLUMN slug TEXT")
    db.execute("ALTER TABLE technologies ADD COLUMN icon TEXT")
    # 1: in the signature library of the last crawl; 0: known only from detections (a
    # technology since removed from the library, or one recorded without the library mirrored).
    db.execute("ALTER TABLE technologies ADD COLUMN in_library INTEGER NOT NULL DEFAULT 1")
    # Parents for rows that name none, so no row is lost: a domain scanned before it was
    # registered, a technology the library no longer has.
    db.execute("INSERT INTO domains (domain, added_at) SELECT domain, min(started_at) FROM scans "
               "WHERE domain NOT IN (SELECT domain FROM domains) GROUP BY domain")
    db.execute("INSERT INTO domains (domain, added_at) SELECT domain, min(first_seen) FROM detections "
               "WHERE domain NOT IN (SELECT domain FROM domains) GROUP BY domain")
    db.execute("INSERT INTO technologies (name, categories, in_library) SELECT technology, max(categories), 0 "
               "FROM detections WHERE technology NOT IN (SELECT name FROM technologies) GROUP BY technology")
    db.conn.executemany("UPDATE technologies SET slug = ? WHERE name = ?",
                        [(slugify(r[0]), r[0]) for r in db.execute("SELECT name FROM technologies")])
    views = [(r[0], r[1]) for r in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql IS NOT NULL")]
    for name, _ in views:  # a view naming a dropped table would stop ALTER TABLE RENAME
        db.execute(f"DROP VIEW {name}")
    for table, links in FOREIGN_KEYS.items():
        _rebuild_with_foreign_keys(db, table, links)
    for _, sql in views:
        db.execute(sql)
    # "Domains running X" from the index alone (covering: no table lookup per domain), newest
    # first without a sort (Datasette's who_runs); it replaces the two indexes it starts with.
    # "Members of a cohort by tier" without a scan.  See bench/query.py.
    db.execute("CREATE INDEX IF NOT EXISTS detections_technology_status_seen "
               "ON detections(technology, status, last_seen, domain, version, first_seen)")
    db.execute("DROP INDEX IF EXISTS detections_technology_status")
    db.execute("DROP INDEX IF EXISTS idx_detections_technology")
    db.execute("CREATE INDEX IF NOT EXISTS cohort_members_cohort_tier ON cohort_members(cohort, tier)")
    # technology_counts' added/removed in 30 days from the index alone; failing_domains by status.
    db.execute("CREATE INDEX IF NOT EXISTS changes_technology_kind_at ON changes(technology, kind, at)")
    db.execute("CREATE INDEX IF NOT EXISTS domains_last_status ON domains(last_status)")
    bad = [tuple(r) for t in FOREIGN_KEYS for r in db.execute(f"PRAGMA foreign_key_check({t})")]
    if bad:
        raise sqlite3.IntegrityError(f"migration 10: rows without their parent remain: {bad[:5]}")


def _rebuild_with_foreign_keys(db: sqlite_utils.Database, table: str, links: dict[str, tuple[str, str]]) -> None:
    columns = list(db.execute(f"PRAGMA table_info({table})"))  # cid, name, type, notnull, default, pk
    # Its indexes and triggers (a later migration may add some before this one runs) go with it.
    kept = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ? AND sql IS NOT NULL "
        "ORDER BY type = 'trigger'", [table])]
    keys = [c[1] for c in sorted((c for c in columns if c[5]), key=lambda c: c[5])]
    rowid = len(keys) == 1 and next(c[2] for c in columns if c[1] == keys[0]).upper() == "INTEGER"
    parts = []
    for _cid, name, kind, notnull, default, _pk in columns:
        part = f'"{name}" {kind}'.rstrip()
        if rowid and keys == [name]:
            part += " PRIMARY KEY"  # the rowid: scan ids (changes.scan_id) stay as they are
        if notnull:
            part += " NOT NULL"
        if default is not None:
            part += f" DEFAULT {default}"
        if name in links:
            parent, key = links[name]
            part += f' REFERENCES {parent}("{key}")'
        parts.append(part)
    if keys and not rowid:
        parts.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in keys) + ")")
    names = ", ".join(f'"{c[1]}"' for c in columns)
    db.execute(f"CREATE TABLE {table}_rebuilt ({', '.join(parts)})")
    db.execute(f"INSERT INTO {table}_rebuilt ({names}) SELECT {names} FROM {table}")
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
    for sql in kept:
        db.execute(sql)


Migration = Callable[[sqlite_utils.Database], None]

#: Numbered migrations, applied in order once each.  Append; never edit a released one.
MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: domains, scans, detections, technologies, categories", _m001_initial),
    (2, "segmentation: accounts, cohorts, cohort_members", _m002_segmentation),
    (3, "history: changes, runs, detections.miss_count, scans.pages_failed/counted", _m003_history),
    (4, "page outcomes: scans.pages_offsite, scans.pages_blocked", _m004_page_outcomes),
    (5, "views: domain_technologies, technology_counts, category_counts, domain_summary", _m005_views),
    (6, "segment history: segment_runs, segment_accounts; cohorts by segmentation", _m006_segment_history),
    (7, "dns tier: scans.dns_status, scans.dns_errors, scans.cert_issuer", _m007_dns),
    (8, "rendered tier: scans.render, scans.render_note", _m008_render),
    (9, "index scans(run_id, domain): the distributed writer stores each domain once per run", _m009_run_domain_index),
    (10, ("foreign keys: scans.domain, detections.domain -> domains, detections.technology -> technologies; "
          "technologies.slug/icon/in_library; indexes for the canned queries"), _m010_foreign_keys),
]


def pending(db: sqlite_utils.Database) -> list[tuple[int, str, Migration]]:
    """The migrations this database has not applied yet (all of them for a new file)."""
    if "_migrations" not in db.table_names():
        return list(MIGRATIONS)
    done = {row[0] for row in db.execute("SELECT id FROM _migrations")}
    return [m for m in MIGRATIONS if m[0] not in done]


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply pending migrations in order, each in its own transaction; return the numbers applied.

    The caller holds the database's lock (see :meth:`detector.store.store.Store.open`), so two
    processes never migrate at once; the check is repeated inside each transaction anyway.
    Foreign keys are off while migrating (a table rebuild drops the old table; see
    :func:`_m010_foreign_keys`, which checks them itself) and back as they were after.
    """
    applied = []
    enforced = db.execute("PRAGMA foreign_keys").fetchone()[0]
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        for number, name, func in MIGRATIONS:
            with transaction(db):
                db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
                if db.execute("SELECT 1 FROM _migrations WHERE id = ?", [number]).fetchone():
                    continue
                func(db)
                db.execute("INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
                           [number, name, utc_now()])
            applied.append(number)
    finally:
        db.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
    return applied
