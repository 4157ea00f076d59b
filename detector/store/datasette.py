"""Datasette metadata for a detector database: titles, column help, facets, canned queries.

``detector datasette-metadata --db detector.db > metadata.json`` then
``datasette detector.db --metadata metadata.json``.  Plain data: the tables and views are the
ones the migrations create (see :mod:`detector.store.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_TABLES: dict[str, dict[str, Any]] = {
    "domains": {
        "description": "Every domain ever crawled, with its last scan and last successful scan.",
        "columns": {"last_status": "ok or error", "last_ok_at": "last successful scan (UTC)"},
        "facets": ["last_status"],
    },
    "scans": {
        "description": "One row per domain and run: outcome, error kind, pages fetched.",
        "columns": {
            "error_kind": "why a scan failed (see README, Error kinds)",
            "pages_failed": "extra pages that may pass later: the scan is partial",
            "pages_offsite": "extra pages that redirected to another site (left out of the verdict)",
            "pages_blocked": "extra pages robots.txt forbids",
            "dns_status": "ok, partial, failed, skipped or off (--no-dns): how the DNS lookups ended",
            "dns_errors": "JSON: record type -> why it has no records (nxdomain, no_data, servfail, timeout...)",
            "cert_issuer": "issuer of the homepage's https certificate",
            "counted": "1 when the scan could count a technology as missing",
        },
        "facets": ["status", "error_kind", "run_id"],
    },
    "detections": {
        "description": "One row per domain and technology, with first and last sighting and evidence.",
        "columns": {
            "first_seen": "first scan that saw it (never overwritten)",
            "last_seen": "last scan that saw it",
            "evidence": "JSON: page, source, pattern, match",
            "miss_count": "complete scans in a row that did not see it",
        },
        "facets": ["technology", "status"],
    },
    "changes": {
        "description": "History: technologies added, removed, or with a new version.",
        "facets": ["kind", "technology"],
    },
    "runs": {"description": "Every crawl, refresh and demo run.", "facets": ["command", "status"]},
    "technologies": {
        "description": "The signature library: every technology detector knows, and any a detection names.",
        "columns": {
            "slug": "Wappalyzer's slug of the name",
            "icon": "the icon file name in Wappalyzer's icon set",
            "in_library": "1: in the library of the last crawl; 0: known only from detections (removed from the "
                          "library since, or detected with another library)",
        },
        "facets": ["in_library"],
    },
    "categories": {"description": "Technology categories of the signature library."},
    "accounts": {"description": "Accounts imported with `detector accounts import` (firmographics)."},
    "cohorts": {
        "description": "Cohorts of each segmentation's current `detector segment` run.",
        "facets": ["segmentation", "kind"],
    },
    "cohort_members": {
        "description": "Account and cohort, with the reason that makes the message specific.",
        "facets": ["segmentation", "cohort", "tier", "stale"],
    },
    "segment_runs": {
        "description": "Every `detector segment` run kept: rules file and hash, time, funnel counts.",
        "facets": ["segmentation"],
    },
    "segment_accounts": {
        "description": "One row per account and run: primary cohort, cohorts, tier, score breakdown.",
        "facets": ["run_id", "primary_cohort", "tier"],
    },
    "domain_technologies": {
        "description": "Detections with a stale flag (last seen more than 30 days ago).",
        "facets": ["technology", "status", "stale"],
    },
    "technology_counts": {"description": "Active domains per technology, added and removed in 30 days."},
    "category_counts": {"description": "Technologies and active domains per category."},
    "domain_summary": {"description": "One row per domain: last scan, technology count, cohorts, tier."},
}

_QUERIES: dict[str, dict[str, Any]] = {
    "who_runs": {
        "title": "Who runs a technology",
        "sql": "select domain, version, first_seen, last_seen from detections "
               "where technology = :technology and status = 'active' order by last_seen desc",
    },
    "dropped_recently": {
        "title": "Who dropped a technology in the last 30 days",
        "sql": "select domain, old_version, at from changes where technology = :technology "
               "and kind = 'removed' and at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days') "
               "order by at desc",
    },
    "cohort_by_tier": {
        "title": "Members of a cohort by tier",
        "sql": "select tier, domain, reason, stale from cohort_members where cohort = :cohort "
               "order by tier is null, tier, score desc, domain",
    },
    "stale_accounts": {
        "title": "Accounts whose last successful scan is over 30 days old (or never was)",
        "sql": "select domain, last_ok_at, last_status from domains "
               "where last_ok_at is null or last_ok_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days') "
               "order by last_ok_at",
    },
    "failing_domains": {
        "title": "Domains whose last scan failed, with the reason",
        "sql": "select d.domain, s.error_kind, s.error_message, s.finished_at from domains d "
               "join scans s on s.id = (select max(id) from scans where domain = d.domain) "
               "where d.last_status = 'error' order by s.error_kind, d.domain",
    },
}


def metadata(db_path: str | Path) -> dict[str, Any]:
    """Datasette metadata for the database file ``db_path`` (its name keys the tables)."""
    name = Path(db_path).stem
    return {
        "title": "detector",
        "description": "Technologies of your accounts' websites, their history and cohorts.",
        "license": "MIT",
        "source": "detector",
        "databases": {name: {"tables": _TABLES, "queries": _QUERIES}},
    }
