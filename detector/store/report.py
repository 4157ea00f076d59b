"""Reading what ``detector report`` shows: adoption, cohorts, weekly changes, scan health, domains.

Queries only (sqlite-utils), one function per section, each returning plain frozen values that
:mod:`detector.report` renders; nothing here knows about HTML.  :func:`read_report` gathers them.
Scan ages and failing domains come from :func:`detector.store.freshness.status_report`, so the
report and ``detector status`` always agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlite_utils

from detector.store.freshness import format_timedelta, status_report
from detector.store.history import cutoff
from detector.timestamps import format_time
from detector.timestamps import now as clock_now

#: Columns of the cohort-size table, in order (as ``detector segment`` prints them).
TIER_COLUMNS = ("tier 1", "tier 2", "tier 3", "no tier", "stale")
#: Technologies listed per domain in the domain table.
DOMAIN_TECHNOLOGIES = 5
#: Leading technologies named per category.
CATEGORY_LEADERS = 3
_CHUNK = 500  # SQLite's host-parameter limit is far above; keeps each IN list short


@dataclass(frozen=True, slots=True)
class Adoption:
    """One technology (or category) and the domains that run it now."""

    name: str
    domains: int
    #: The technology's first category ("" when the library does not say); for a category:
    #: its leading technologies, most domains first, joined by ", ".
    detail: str = ""
    #: For a category: how many technologies of it are active.
    technologies: int = 0


@dataclass(frozen=True, slots=True)
class CohortSize:
    """One cohort of a segmentation: members by tier column (see :data:`TIER_COLUMNS`)."""

    name: str
    kind: str
    counts: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        """Members, stale ones included."""
        return sum(n for _, n in self.counts)


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The current run of one segmentation (``segment --name``) and its cohorts in rules order."""

    name: str
    run_id: int
    computed_at: str
    accounts: int
    tiered: int
    cohorts: tuple[CohortSize, ...]
    #: False when the rules define no tiers: every live member is then ``no tier``.
    has_tiers: bool


@dataclass(frozen=True, slots=True)
class Week:
    """Change events of one week (Monday, ISO date) by kind."""

    start: str
    added: int
    removed: int
    version_changed: int


@dataclass(frozen=True, slots=True)
class Health:
    """How the latest scans went and how old the data is."""

    domains: int
    ok: int
    never_scanned: int
    #: Domains whose latest scan failed, by error kind, most first.
    errors: tuple[tuple[str, int], ...]
    #: Domains by age of their last successful scan (``< 1d`` ... ``> 90d``, ``never``).
    ages: tuple[tuple[str, int], ...]
    active_detections: int
    stale_detections: int
    stale_after: str
    newest_ok: str | None
    oldest_ok: str | None
    #: The latest run of any command (crawl, refresh, demo...): command, started_at, status.
    last_run: tuple[str, str, str] | None

    @property
    def failing(self) -> int:
        """Domains whose latest scan failed."""
        return sum(n for _, n in self.errors)

    @property
    def stale_share(self) -> float:
        """The share (0-1) of active detections last seen longer ago than ``stale_after``."""
        return self.stale_detections / self.active_detections if self.active_detections else 0.0


@dataclass(frozen=True, slots=True)
class DomainRow:
    """One line of the domain table."""

    domain: str
    #: ``ok``, ``error`` or ``never`` (no scan yet).
    status: str
    #: The latest scan's error kind, for a failing domain.
    error_kind: str
    last_scanned_at: str
    last_ok_at: str
    stale: bool
    technology_count: int
    #: The domain's technologies, most confident first, at most :data:`DOMAIN_TECHNOLOGIES`.
    technologies: tuple[tuple[str, str], ...]
    #: (segmentation, cohort, stale) of each membership in current runs.
    cohorts: tuple[tuple[str, str, bool], ...]
    #: The best tier of the domain's live memberships (None: no tier).
    tier: int | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the report shows, read in one go."""

    generated_at: str
    top: int
    technologies: tuple[Adoption, ...]
    technology_total: int
    categories: tuple[Adoption, ...]
    category_total: int
    #: None when no segmentation has run on the database.
    segmentations: tuple[Segmentation, ...] | None
    weeks: tuple[Week, ...]
    health: Health
    domains: tuple[DomainRow, ...]
    domain_total: int


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What the report covers: ``top`` technologies and categories, ``weeks`` weeks of changes,
    the first ``rows`` domains (by name), staleness judged by ``stale_after``, as of ``now``
    (None: the clock, see :func:`detector.timestamps.now`)."""

    top: int = 15
    weeks: int = 12
    rows: int = 5000
    stale_after: timedelta = timedelta(days=30)
    now: datetime | None = None


def read_report(db: sqlite_utils.Database, options: ReportOptions | None = None) -> ReportData:
    """Read every section of the report (the default ``ReportOptions()`` when None)."""
    options = options or ReportOptions()
    top, weeks, rows, stale_after = options.top, options.weeks, options.rows, options.stale_after
    moment = (options.now or clock_now()).astimezone(timezone.utc)
    techs, tech_total = technology_adoption(db, top)
    cats, cat_total = category_adoption(db, top)
    health = scan_health(db, stale_after=stale_after, now=moment)
    return ReportData(
        generated_at=format_time(moment),
        top=top,
        technologies=techs,
        technology_total=tech_total,
        categories=cats,
        category_total=cat_total,
        segmentations=segmentations(db),
        weeks=weekly_changes(db, weeks, now=moment),
        health=health,
        domains=domain_rows(db, rows, stale_after=stale_after, now=moment),
        domain_total=health.domains,
    )


def technology_adoption(db: sqlite_utils.Database, top: int) -> tuple[tuple[Adoption, ...], int]:
    """The ``top`` technologies by active domains (with their first category), and how many are active."""
    total = _scalar(db, "SELECT count(DISTINCT technology) FROM detections WHERE status = 'active'")
    found = db.execute(
        "SELECT d.technology, count(*) AS n, "
        "coalesce((SELECT json_extract(t.categories, '$[0]') FROM technologies t "
        "          WHERE t.name = d.technology AND json_valid(t.categories)), "
        "         (SELECT json_extract(x.categories, '$[0]') FROM detections x "
        "          WHERE x.technology = d.technology AND json_valid(x.categories) LIMIT 1), '') "
        "FROM detections d WHERE d.status = 'active' "
        "GROUP BY d.technology ORDER BY n DESC, d.technology LIMIT ?",
        [top],
    ).fetchall()
    return tuple(Adoption(str(name), int(n), str(category or "")) for name, n, category in found), total


_ACTIVE_CATEGORIES = (
    "FROM detections d, json_each(CASE WHEN json_valid(d.categories) THEN d.categories ELSE '[]' END) c "
    "WHERE d.status = 'active'"
)


def category_adoption(db: sqlite_utils.Database, top: int) -> tuple[tuple[Adoption, ...], int]:
    """The ``top`` categories by active domains, each with its leading technologies, and how many there are."""
    leaders: dict[str, list[str]] = defaultdict(list)
    for category, technology, _ in db.execute(
        f"SELECT c.value, d.technology, count(*) AS n {_ACTIVE_CATEGORIES} "
        "GROUP BY c.value, d.technology ORDER BY c.value, n DESC, d.technology"
    ):
        if len(leaders[category]) < CATEGORY_LEADERS:
            leaders[category].append(str(technology))
    found = db.execute(
        f"SELECT c.value, count(DISTINCT d.domain) AS n, count(DISTINCT d.technology) {_ACTIVE_CATEGORIES} "
        "GROUP BY c.value ORDER BY n DESC, c.value LIMIT ?",
        [top],
    ).fetchall()
    out = tuple(Adoption(str(name), int(n), ", ".join(leaders[name]), int(t)) for name, n, t in found)
    return out, len(leaders)


def segmentations(db: sqlite_utils.Database) -> tuple[Segmentation, ...] | None:
    """Cohort sizes by tier of every segmentation's current run; None when none has run."""
    if not db.table("segment_runs").exists() or not _scalar(db, "SELECT count(*) FROM segment_runs"):
        return None
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    tiered: set[str] = set()
    for segmentation, cohort, column, n in db.execute(
        "SELECT segmentation, cohort, CASE WHEN stale THEN 'stale' WHEN tier IS NULL THEN 'no tier' "
        "ELSE 'tier ' || tier END, count(*) FROM cohort_members GROUP BY 1, 2, 3"
    ):
        counts[(segmentation, cohort)][column] = int(n)
        if str(column).startswith("tier "):
            tiered.add(segmentation)
    runs = {
        str(name): (int(run_id), str(at), int(accounts), int(n_tiered))
        for name, run_id, at, accounts, n_tiered in db.execute(
            "SELECT r.segmentation, r.id, r.computed_at, r.accounts, r.tiered FROM segment_runs r "
            "WHERE r.id = (SELECT max(id) FROM segment_runs x WHERE x.segmentation = r.segmentation)"
        )
    }
    cohorts: dict[str, list[CohortSize]] = defaultdict(list)
    for segmentation, name, kind in db.execute(
        "SELECT segmentation, name, kind FROM cohorts ORDER BY segmentation, position, name"
    ):
        mine = counts.get((segmentation, name), {})
        extra = sorted(c for c in mine if c not in TIER_COLUMNS)  # tier 4+, should rules ever allow it
        columns = (*TIER_COLUMNS[:3], *extra, *TIER_COLUMNS[3:])
        cohorts[segmentation].append(CohortSize(str(name), str(kind), tuple((c, mine.get(c, 0)) for c in columns)))
    return tuple(
        Segmentation(name, run_id, at, accounts, n_tiered, tuple(cohorts.get(name, ())),
                     has_tiers=name in tiered or n_tiered > 0)
        for name, (run_id, at, accounts, n_tiered) in sorted(runs.items())
    )


def week_start(moment: datetime) -> datetime:
    """Midnight UTC of the Monday of ``moment``'s week.

    >>> week_start(datetime(2026, 12, 3, 11, 0, tzinfo=timezone.utc)).date().isoformat()
    '2026-11-30'
    """
    day = moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def weekly_changes(db: sqlite_utils.Database, weeks: int, *, now: datetime | None = None) -> tuple[Week, ...]:
    """Change events of the last ``weeks`` weeks (this one included), oldest first; weeks without any count zero."""
    first = week_start(now or clock_now()) - timedelta(weeks=weeks - 1)
    starts = [(first + timedelta(weeks=i)).date().isoformat() for i in range(weeks)]
    counts: dict[str, dict[str, int]] = {s: {} for s in starts}
    # date(at, 'weekday 0', '-6 days'): the Monday on or before ``at`` (SQLite's weekday 0 is Sunday).
    for start, kind, n in db.execute(
        "SELECT date(at, 'weekday 0', '-6 days') AS week, kind, count(*) FROM changes "
        "WHERE at >= ? GROUP BY week, kind",
        [format_time(first)],
    ):
        if start in counts:
            counts[start][str(kind)] = int(n)
    return tuple(
        Week(s, counts[s].get("added", 0), counts[s].get("removed", 0), counts[s].get("version_changed", 0))
        for s in starts
    )


def scan_health(db: sqlite_utils.Database, *, stale_after: timedelta, now: datetime | None = None) -> Health:
    """The latest scans' outcomes (ok, error kinds) and the data's age."""
    status = status_report(db, stale_after=stale_after, show=0, now=now)
    by_status = {str(s): int(n) for s, n in db.execute("SELECT coalesce(last_status, ''), count(*) FROM domains "
                                                       "GROUP BY 1")}
    newest = db.execute("SELECT max(last_ok_at) FROM domains").fetchone()[0]
    detections = status["detections"]
    run = db.execute("SELECT command, started_at, status FROM runs ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()

    return Health(
        domains=int(status["database_domains"]),
        ok=by_status.get("ok", 0),
        never_scanned=by_status.get("", 0),
        errors=tuple((str(k), int(n)) for k, n in status["failing_by_kind"].items()),
        ages=tuple((str(k), int(n)) for k, n in status["last_ok_scan_age"].items()),
        active_detections=int(detections["active"]),
        stale_detections=int(detections["stale"]),
        stale_after=format_timedelta(stale_after),
        newest_ok=newest,
        oldest_ok=status["oldest_ok_scan"]["at"] if status["oldest_ok_scan"] else None,
        last_run=(str(run[0]), str(run[1]), str(run[2])) if run else None,
    )


def domain_rows(
    db: sqlite_utils.Database, limit: int, *, stale_after: timedelta = timedelta(days=30),
    now: datetime | None = None,
) -> tuple[DomainRow, ...]:
    """The first ``limit`` domains by name, each with status, technologies and cohorts."""
    stale_cut = cutoff(stale_after, now=now)
    base = db.execute(
        "SELECT domain, coalesce(last_status, 'never'), coalesce(last_scanned_at, ''), coalesce(last_ok_at, '') "
        "FROM domains ORDER BY domain LIMIT ?",
        [limit],
    ).fetchall()
    names = [str(r[0]) for r in base]
    kinds: dict[str, str] = {}
    techs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    tech_counts: dict[str, int] = {}
    members: dict[str, list[tuple[str, str, bool, int | None]]] = defaultdict(list)
    has_members = db.table("cohort_members").exists()
    for chunk in _chunks(names):
        marks = ",".join("?" * len(chunk))
        for domain, kind in db.execute(
            "SELECT d.domain, (SELECT coalesce(s.error_kind, 'other') FROM scans s WHERE s.domain = d.domain "
            "                  ORDER BY s.finished_at DESC, s.id DESC LIMIT 1) "
            f"FROM domains d WHERE d.last_status = 'error' AND d.domain IN ({marks})",
            chunk,
        ):
            kinds[domain] = str(kind or "other")
        for domain, technology, version, n in db.execute(
            "SELECT domain, technology, coalesce(version, ''), total FROM ("
            "  SELECT domain, technology, version, count(*) OVER (PARTITION BY domain) AS total,"
            "         row_number() OVER (PARTITION BY domain ORDER BY confidence DESC, technology) AS rank"
            # "+status": look rows up by the key (domain, ...), not by the status index (13x slower).
            f"  FROM detections WHERE +status = 'active' AND domain IN ({marks})"
            ") WHERE rank <= ? ORDER BY domain, rank",
            [*chunk, DOMAIN_TECHNOLOGIES],
        ):
            techs[domain].append((str(technology), str(version)))
            tech_counts[domain] = int(n)
        if has_members:
            for domain, segmentation, cohort, stale, tier in db.execute(
                "SELECT m.domain, m.segmentation, m.cohort, m.stale, m.tier FROM cohort_members m "
                "LEFT JOIN cohorts c ON c.segmentation = m.segmentation AND c.name = m.cohort "
                f"WHERE m.domain IN ({marks}) ORDER BY m.domain, m.segmentation, c.position, m.cohort",
                chunk,
            ):
                members[domain].append((str(segmentation), str(cohort), bool(stale),
                                        int(tier) if tier is not None else None))
    out = []
    for domain, status, scanned, ok_at in base:
        mine = members.get(domain, [])
        tiers = [t for _, _, stale, t in mine if t is not None and not stale]
        out.append(DomainRow(
            domain=str(domain),
            status=str(status),
            error_kind=kinds.get(domain, ""),
            last_scanned_at=str(scanned),
            last_ok_at=str(ok_at),
            stale=not ok_at or str(ok_at) < stale_cut,
            technology_count=tech_counts.get(domain, 0),
            technologies=tuple(techs.get(domain, ())),
            cohorts=tuple((s, c, stale) for s, c, stale, _ in mine),
            tier=min(tiers) if tiers else None,
        ))
    return tuple(out)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


def _scalar(db: sqlite_utils.Database, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0] or 0)
