"""Reading freshness back: stale domains to refresh, the change history, the database's status.

Queries only (sqlite-utils); the rules that write history live in :mod:`detector.history`
and :mod:`detector.storage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from detector.history import CHANGE_KINDS, cutoff, format_age

#: Age buckets of ``detector status``: label and upper bound (``None``: no bound).
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("< 1d", timedelta(days=1)),
    ("1-7d", timedelta(days=7)),
    ("7-30d", timedelta(days=30)),
    ("30-90d", timedelta(days=90)),
    ("> 90d", None),
)


@dataclass(frozen=True, slots=True)
class StalePlan:
    """The domains a refresh will scan, and how many stale ones ``--limit`` left for later."""

    domains: tuple[str, ...]
    stale_total: int
    known_total: int


def stale_domains(
    db: sqlite_utils.Database,
    older_than: timedelta,
    *,
    only: Sequence[str] | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> StalePlan:
    """Domains whose last successful scan is ``older_than`` or older (or never was), longest waiting first.

    ``0`` takes every domain.  ``only`` restricts the choice to those domains; one the database does not know yet has
    never been scanned, so it is stale.  Order: by the time we last learned something about
    the domain (last ok scan, else last attempt, else when it was added), then by name.
    """
    limit_at = cutoff(older_than, now=now)
    rows = [
        (r["domain"], r["last_ok_at"], r["waiting_since"])
        for r in db.query(
            "SELECT domain, last_ok_at, COALESCE(last_ok_at, last_scanned_at, added_at, '') AS waiting_since "
            "FROM domains"
        )
    ]
    known_total = len(rows)
    if only is not None:
        wanted = dict.fromkeys(only)
        known = {d for d, _, _ in rows}
        rows = [r for r in rows if r[0] in wanted] + [(d, None, "") for d in wanted if d not in known]
    stale = sorted(
        ((waiting, domain) for domain, ok_at, waiting in rows if ok_at is None or ok_at <= limit_at),
    )
    chosen = stale if limit is None else stale[:limit]
    return StalePlan(tuple(d for _, d in chosen), len(stale), known_total)


def list_changes(
    db: sqlite_utils.Database,
    *,
    since: timedelta | None = None,
    technology: str | None = None,
    kind: str | None = None,
    domain: str | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Change events, newest first, filtered by age, technology (any case), kind and domain."""
    where, params = [], []
    if since is not None:
        where.append("at >= ?")
        params.append(cutoff(since, now=now))
    if technology:
        where.append("technology = ? COLLATE NOCASE")
        params.append(technology)
    if kind:
        if kind not in CHANGE_KINDS:
            raise ValueError(kind)
        where.append("kind = ?")
        params.append(kind)
    if domain:
        where.append("domain = ?")
        params.append(domain.lower())
    sql = "SELECT at, domain, technology, kind, old_version, new_version, scan_id, run_id FROM changes"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at DESC, domain, technology, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return list(db.query(sql, params))


def change_counts(db: sqlite_utils.Database, run_id: str) -> dict[str, int]:
    """Change events one run recorded, by kind (every kind present, zeros included)."""
    counts = dict.fromkeys(CHANGE_KINDS, 0)
    for row in db.query("SELECT kind, count(*) AS n FROM changes WHERE run_id = ? GROUP BY kind", [run_id]):
        counts[row["kind"]] = row["n"]
    return counts


def status_report(
    db: sqlite_utils.Database, *, stale_after: timedelta, show: int = 10, now: datetime | None = None
) -> dict[str, Any]:
    """What ``detector status`` shows: scan ages, failing domains, runs, stale detections."""
    moment = now or datetime.now(timezone.utc)
    ages = dict.fromkeys([label for label, _ in AGE_BUCKETS] + ["never"], 0)
    oldest: tuple[str, str] | None = None
    total = 0
    for row in db.query("SELECT domain, last_ok_at FROM domains"):
        total += 1
        ok_at = row["last_ok_at"]
        if ok_at is None:
            ages["never"] += 1
            continue
        if oldest is None or ok_at < oldest[0]:
            oldest = (ok_at, row["domain"])
        age = moment - _parse_time(ok_at)
        for label, bound in AGE_BUCKETS:
            if bound is None or age < bound:
                ages[label] += 1
                break
    failing = _failing(db)
    stale_cut = cutoff(stale_after, now=moment)
    active = _scalar(db, "SELECT count(*) FROM detections WHERE status = 'active'")
    stale_count = _scalar(
        db, "SELECT count(*) FROM detections WHERE status = 'active' AND last_seen < ?", [stale_cut]
    )
    stale_rows = [
        {**r, "age": format_age((moment - _parse_time(r["last_seen"])).total_seconds()), "stale": True}
        for r in db.query(
            "SELECT domain, technology, version, last_seen FROM detections "
            "WHERE status = 'active' AND last_seen < ? ORDER BY last_seen, domain, technology LIMIT ?",
            [stale_cut, show],
        )
    ]
    return {
        "database_domains": total,
        "last_ok_scan_age": ages,
        "oldest_ok_scan": {"domain": oldest[1], "at": oldest[0]} if oldest else None,
        "failing_domains": sum(failing.values()),
        "failing_by_kind": failing,
        "last_refresh": _last_run(db, "refresh"),
        "last_crawl": _last_run(db, "crawl"),
        "interrupted_runs": _scalar(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'"),
        "detections": {
            "active": active,
            "removed": _scalar(db, "SELECT count(*) FROM detections WHERE status = 'removed'"),
            "stale_after": format_timedelta(stale_after),
            "stale": stale_count,
            "stale_examples": stale_rows,
        },
    }


def _failing(db: sqlite_utils.Database) -> dict[str, int]:
    """Domains whose latest scan failed, by that scan's error kind, most first."""
    counts: dict[str, int] = {}
    for row in db.query(
        "SELECT COALESCE(s.error_kind, 'other') AS kind, count(*) AS n FROM domains d "
        "JOIN scans s ON s.id = (SELECT id FROM scans WHERE domain = d.domain ORDER BY finished_at DESC, id DESC LIMIT 1) "
        "WHERE d.last_status = 'error' GROUP BY kind"
    ):
        counts[row["kind"]] = row["n"]
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _last_run(db: sqlite_utils.Database, command: str) -> dict[str, Any] | None:
    for row in db.query(
        "SELECT id, command, started_at, finished_at, status, domains_planned, domains_ok, domains_failed "
        "FROM runs WHERE command = ? ORDER BY started_at DESC, id DESC LIMIT 1",
        [command],
    ):
        row["changes"] = change_counts(db, row["id"])
        return row
    return None


def _scalar(db: sqlite_utils.Database, sql: str, params: Iterable[Any] = ()) -> int:
    return int(db.execute(sql, list(params)).fetchone()[0])


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def format_timedelta(delta: timedelta) -> str:
    """A duration as ``--older-than`` would take it: ``30d`` for a whole number of days, else a short age.

    >>> format_timedelta(timedelta(days=30)), format_timedelta(timedelta(hours=12))
    ('30d', '12h')
    """
    seconds = delta.total_seconds()
    if seconds and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return format_age(seconds)
