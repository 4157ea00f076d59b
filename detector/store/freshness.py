"""Reading freshness back: stale domains to refresh, the change history, the database's status.

Queries only (sqlite-utils); the rules that write history live in :mod:`detector.store.history`
and :mod:`detector.store.scans`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from detector.store.history import CHANGE_KINDS, cutoff, format_age
from detector.timestamps import now as clock_now
from detector.timestamps import parse_time

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
    known_total = _scalar(db, "SELECT count(*) FROM domains")
    stale_where = "(last_ok_at IS NULL OR last_ok_at <= ?)"
    waiting = "COALESCE(last_ok_at, last_scanned_at, added_at, '')"
    if only is None:
        # The scheduled case, over the whole database: SQLite sorts, Python holds only the chosen.
        total = _scalar(db, f"SELECT count(*) FROM domains WHERE {stale_where}", [limit_at])
        sql = f"SELECT domain FROM domains WHERE {stale_where} ORDER BY {waiting}, domain"
        params: list[Any] = [limit_at]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return StalePlan(tuple(r[0] for r in db.execute(sql, params).fetchall()), total, known_total)
    wanted = list(dict.fromkeys(only))
    found: dict[str, tuple[str, bool]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for domain, since, is_stale in db.execute(
            f"SELECT domain, {waiting}, {stale_where} FROM domains WHERE domain IN ({marks})", [limit_at, *chunk]
        ):
            found[domain] = (since, bool(is_stale))
    stale = sorted(
        (found.get(d, ("", True))[0], d) for d in wanted if found.get(d, ("", True))[1]
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
    moment = now or clock_now()
    ages = _age_buckets(db, moment)
    total = _scalar(db, "SELECT count(*) FROM domains")
    oldest = next(
        db.query("SELECT domain, last_ok_at AS at FROM domains WHERE last_ok_at IS NOT NULL ORDER BY last_ok_at, domain LIMIT 1"),
        None,
    )
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
        "oldest_ok_scan": oldest,
        "failing_domains": sum(failing.values()),
        "failing_by_kind": failing,
        "last_refresh": _last_run(db, "refresh"),
        "last_crawl": _last_run(db, "crawl", "demo"),  # `detector demo` crawls the bundled sites
        "interrupted_runs": _scalar(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'"),
        "detections": {
            "active": active,
            "removed": _scalar(db, "SELECT count(*) FROM detections WHERE status = 'removed'"),
            "stale_after": format_timedelta(stale_after),
            "stale": stale_count,
            "stale_examples": stale_rows,
        },
    }


def _age_buckets(db: sqlite_utils.Database, moment: datetime) -> dict[str, int]:
    """Domains by age of their last successful scan, counted by SQLite (one pass)."""
    parts, params = [], []
    newer_than: str | None = None  # the previous bucket's bound, as a time
    for label, bound in AGE_BUCKETS:
        cond = "last_ok_at IS NOT NULL"
        if bound is not None:
            cond += " AND last_ok_at > ?"
            params.append(cutoff(bound, now=moment))
        if newer_than is not None:
            cond += " AND last_ok_at <= ?"
            params.append(newer_than)
        parts.append(f"coalesce(sum({cond}), 0)")
        newer_than = cutoff(bound, now=moment) if bound is not None else None
    parts.append("coalesce(sum(last_ok_at IS NULL), 0)")
    counts = db.execute(f"SELECT {', '.join(parts)} FROM domains", params).fetchone()
    return dict(zip([label for label, _ in AGE_BUCKETS] + ["never"], counts))


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


def _last_run(db: sqlite_utils.Database, *commands: str) -> dict[str, Any] | None:
    """The newest run of any of ``commands``, with its change counts."""
    for row in db.query(
        "SELECT id, command, started_at, finished_at, status, domains_planned, domains_ok, domains_failed "
        f"FROM runs WHERE command IN ({', '.join('?' * len(commands))}) ORDER BY started_at DESC, id DESC LIMIT 1",
        list(commands),
    ):
        row["changes"] = change_counts(db, row["id"])
        return row
    return None


def _scalar(db: sqlite_utils.Database, sql: str, params: Iterable[Any] = ()) -> int:
    return int(db.execute(sql, list(params)).fetchone()[0])


def _parse_time(text: str) -> datetime:
    return parse_time(text)


def format_timedelta(delta: timedelta) -> str:
    """A duration as ``--older-than`` would take it: ``30d`` for a whole number of days, else a short age.

    >>> format_timedelta(timedelta(days=30)), format_timedelta(timedelta(hours=12))
    ('30d', '12h')
    """
    seconds = delta.total_seconds()
    if seconds and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return format_age(seconds)


def technology_names(db: sqlite_utils.Database) -> list[str]:
    """Every technology name the database knows: its library's and any ever detected."""
    names = [r[0] for r in db.execute("SELECT name FROM technologies")]
    names += [r[0] for r in db.execute("SELECT DISTINCT technology FROM detections")]
    return sorted(set(names))
