"""Read accounts and detections for segmentation; write a run (`segment_runs`,
`segment_accounts`, `cohorts`, `cohort_members`); read runs back for the export and diffs."""

from __future__ import annotations

import csv
import itertools
import json
import operator
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from detector.errors import DetectorError
from detector.segment.assign import Account, AccountValue, Assignment, Seen
from detector.segment.rules import UNKNOWN, Rules
from detector.store.transaction import transaction

ACCOUNT_INTERNAL = ("domain", "imported_at")
EXPORT_KEYS = (
    "primary_cohort",
    "cohorts",
    "stale_cohorts",
    "tier",
    "score",
    "score_breakdown",
    "reasons",
    "technologies",
    "first_seen",
    "segmented_at",
)
DEFAULT_SEGMENTATION = "default"


class RunNotFoundError(DetectorError):
    """No stored segmentation run matches what was asked for."""


@dataclass(frozen=True, slots=True)
class SegmentRun:
    """One stored `segment` run: its id, segmentation name, rules file and counts."""

    id: int
    segmentation: str
    rules_file: str
    rules_sha256: str
    computed_at: str
    created_at: str
    accounts: int
    in_market: int
    in_cohort: int
    tiered: int
    funnel: tuple[tuple[str, int], ...]
    forced: bool


@dataclass(frozen=True, slots=True)
class Move:
    """One line of `segment diff`: an account entered or left a cohort, or changed tier."""

    domain: str
    change: str  # "entered", "left", "tier"
    cohort: str  # "" for a tier change
    #: The account's primary cohort before and after (its tier, for a tier change).
    before: str
    after: str
    reason: str


# The last scan's outcome; for a domain never scanned successfully, its error kind (dns,
# timeout...), looked up only for those (the scans index is on domain, started_at).
_LAST_FAILURE = (
    "case when d.last_ok_at is null and d.last_status = 'error' then coalesce("
    "(select s.error_kind from scans s where s.domain = d.domain "
    "order by s.started_at desc limit 1), 'error') else d.last_status end"
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where the accounts came from: the `accounts` table or, when it is empty, `domains`."""

    table: str
    count: int

    def columns(self, db: sqlite_utils.Database) -> list[str] | None:
        """The firmographic columns, or None when the accounts are bare crawled domains."""
        if self.table != "accounts":
            return None
        return [c for c in db.table("accounts").columns_dict if c not in ACCOUNT_INTERNAL]


def account_source(db: sqlite_utils.Database) -> Source:
    """Which table lists the accounts to segment."""
    if db.table("accounts").exists():
        n = db.execute("select count(*) from accounts").fetchone()[0]
        if n:
            return Source("accounts", int(n))
    if db.table("domains").exists():
        return Source("domains", int(db.execute("select count(*) from domains").fetchone()[0]))
    return Source("accounts", 0)


def iter_accounts(
    db: sqlite_utils.Database,
    source: Source,
    technologies: Collection[str] | None = None,
    *,
    removed: bool = False,
    pages: bool = False,
    first_scans: bool = False,
    confidence: bool = False,
) -> Iterator[Account]:
    """Accounts with their scan state and active detections, streamed in domain order.

    ``technologies`` limits the detections read to those a rule can look at; ``removed``
    reads the dropped ones too, ``pages`` counts the pages each was seen on (from evidence),
    ``first_scans`` reads when each domain's first successful scan finished, ``confidence``
    each detection's confidence (otherwise taken as 100: no rule looks at it).
    """
    has_domains = db.table("domains").exists()
    if source.table == "accounts":
        columns = [c for c in db.table("accounts").columns_dict if c not in ACCOUNT_INTERNAL]
        select = ", ".join(f"a.[{c}]" for c in columns)
        scan = f"d.last_ok_at, {_LAST_FAILURE}" if has_domains else "null, null"
        join = "left join domains d on d.domain = a.domain" if has_domains else ""
        sql = f"select a.domain, {scan}{', ' + select if select else ''} from accounts a {join} order by a.domain"
    else:
        columns = []
        sql = f"select d.domain, d.last_ok_at, {_LAST_FAILURE} from domains d order by d.domain"
    firsts = _first_scans(db) if first_scans else {}
    groups = _detection_groups(db, technologies, "active", pages=pages, confidence=confidence)
    pending = next(groups, None)
    gone = _detection_groups(db, technologies, "removed", dropped=True) if removed else iter(())
    pending_gone = next(gone, None)
    cursor = db.conn.execute(sql)
    for row in cursor:
        domain = row[0]
        while pending is not None and pending[0] < domain:
            pending = next(groups, None)
        seen: tuple[Seen, ...] = ()
        if pending is not None and pending[0] == domain:
            seen = pending[1]
            pending = next(groups, None)
        dropped: tuple[Seen, ...] = ()
        if pending_gone is not None:
            while pending_gone is not None and pending_gone[0] < domain:
                pending_gone = next(gone, None)
            if pending_gone is not None and pending_gone[0] == domain:
                dropped = pending_gone[1]
                pending_gone = next(gone, None)
        fields: dict[str, AccountValue] = dict(zip(columns, row[3:]))
        yield Account(domain, fields, row[1], row[2], seen, dropped, firsts.get(domain))


def _first_scans(db: sqlite_utils.Database) -> dict[str, str]:
    """When each domain's first successful scan finished."""
    if not db.table("scans").exists():
        return {}
    sql = "select domain, min(finished_at) from scans where status = 'ok' group by domain"
    return {r[0]: r[1] for r in db.execute(sql) if r[1]}


def _detection_groups(
    db: sqlite_utils.Database,
    technologies: Collection[str] | None,
    status: str,
    *,
    pages: bool = False,
    confidence: bool = False,
    dropped: bool = False,
) -> Iterator[tuple[str, tuple[Seen, ...]]]:
    """Detections of a status grouped by domain, in domain order (the merge side of iter_accounts)."""
    if not db.table("detections").exists():
        return
    categories: dict[str, tuple[str, ...]] = {}

    def parse(text: str | None) -> tuple[str, ...]:
        if not text:
            return ()
        parsed = categories.get(text)
        if parsed is None:
            parsed = categories[text] = tuple(json.loads(text))
        return parsed

    # Only the columns a rule looks at: this loop runs once per detection (millions).
    extra = []
    if confidence or pages or dropped:
        extra = [
            "coalesce(confidence, 100)",
            # Pages a technology was seen on: the distinct `page` values of its evidence.
            "(select count(distinct json_extract(e.value, '$.page')) from json_each(evidence) e)"
            if pages
            else "0",
            "removed_at",
        ]
    sql = (
        "select domain, technology, version, categories, last_seen, first_seen"
        + "".join(", " + e for e in extra)
        + " from detections where status = ?"
    )
    params: list[str] = [status]
    if technologies is not None:
        sql += " and technology in (select value from json_each(?))"
        params.append(json.dumps(sorted(technologies)))
    cursor = db.conn.execute(sql + " order by domain", params)
    if extra:
        for domain, rows in itertools.groupby(cursor, key=operator.itemgetter(0)):
            yield domain, tuple(
                Seen(r[1], r[2] or None, parse(r[3]), r[4] or "", r[5] or "", int(r[6]), int(r[7]), r[8])
                for r in rows
            )
        return
    for domain, rows in itertools.groupby(cursor, key=operator.itemgetter(0)):
        yield domain, tuple(Seen(r[1], r[2] or None, parse(r[3]), r[4] or "", r[5] or "") for r in rows)


Guard = Callable[[Counter[tuple[str, str]], "SegmentRun | None"], None]


def write_segmentation(
    db: sqlite_utils.Database,
    rules: Rules,
    assignments: Iterable[Assignment],
    computed_at: str,
    *,
    segmentation: str = DEFAULT_SEGMENTATION,
    created_at: str | None = None,
    summary: Callable[[], Mapping[str, Any]] | None = None,
    guard: Guard | None = None,
    forced: bool = False,
) -> Counter[tuple[str, str]]:
    """Store one run and make it the segmentation's current result, atomically.

    Keeps every earlier run (``segment_runs``, ``segment_accounts``); replaces this
    segmentation's rows of ``cohorts`` and ``cohort_members``. ``summary`` (called once the
    assignments are consumed) gives the run's counts: ``accounts``, ``in_market``,
    ``in_cohort``, ``tiered``, ``funnel``. ``guard`` may raise to refuse the result: the
    transaction rolls back and the previous result stays. Returns member counts by
    (cohort, tier column).
    """
    counts: Counter[tuple[str, str]] = Counter()
    run_id = 0
    # The same detections back many memberships, the same bonuses many scores: encode once.
    encoded: dict[Any, tuple[str, str]] = {}
    breakdowns: dict[tuple[tuple[str, float], ...], str] = {}

    def evidence_json(evidence: tuple[Seen, ...]) -> tuple[str, str]:
        found = encoded.get(evidence)
        if found is None:
            technologies = sorted({s.technology for s in evidence})
            details = [
                {
                    "technology": s.technology,
                    "version": s.version,
                    "first_seen": s.first_seen or None,
                    "last_seen": s.last_seen,
                }
                for s in evidence
            ]
            found = encoded[evidence] = (json.dumps(technologies), json.dumps(details))
            if len(encoded) > 100_000:
                encoded.clear()
        return found

    def member_rows(a: Assignment, out: list[tuple[Any, ...]]) -> None:
        tier_column = f"tier {a.tier}" if a.tier else "no tier"
        for m in a.memberships:
            counts[(m.cohort, "stale" if m.stale else tier_column)] += 1
            technologies, evidence = evidence_json(m.evidence)
            known = m.cohort != UNKNOWN
            out.append(
                (
                    segmentation,
                    m.cohort,
                    m.domain,
                    a.tier if known else None,
                    a.score if known else None,
                    int(m.stale),
                    m.reason,
                    technologies,
                    evidence,
                    computed_at,
                    run_id,
                )
            )

    def account_row(a: Assignment) -> tuple[Any, ...]:
        first: dict[str, str] = {}
        live: list[str] = []
        stale: list[str] = []
        for m in a.memberships:
            (stale if m.stale else live).append(m.cohort)
            for seen in m.evidence:
                if seen.technology not in first:
                    first[seen.technology] = seen.first_seen[:10]
        breakdown = breakdowns.get(a.breakdown)
        if breakdown is None:
            breakdown = breakdowns[a.breakdown] = json.dumps(dict(a.breakdown))
        return (
            run_id,
            a.domain,
            a.primary,
            _names_json(live),
            _names_json(stale),
            a.tier,
            a.score,
            breakdown,
            json.dumps({m.cohort: m.reason for m in a.memberships}, ensure_ascii=False),
            json.dumps(first) if first else "{}",
        )

    with transaction(db) as conn:
        previous = latest_run(db, segmentation)
        cursor = conn.execute(
            "insert into segment_runs (segmentation, rules_file, rules_sha256, computed_at, "
            "created_at, accounts, in_market, in_cohort, tiered, funnel, forced) "
            "values (?, ?, ?, ?, ?, 0, 0, 0, 0, '[]', ?)",
            (
                segmentation,
                rules.source,
                rules.digest,
                computed_at,
                created_at or computed_at,
                int(forced),
            ),
        )
        run_id = int(cursor.lastrowid or 0)
        conn.execute("delete from cohort_members where segmentation = ?", (segmentation,))
        conn.execute("delete from cohorts where segmentation = ?", (segmentation,))
        names = rules.cohort_names
        conn.executemany(
            "insert into cohorts (segmentation, name, kind, description, position, members, "
            "stale_members, rules_file, computed_at, run_id) values (?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
            [
                (
                    segmentation,
                    n,
                    rules.kind_of(n),
                    _description(rules, n),
                    i,
                    rules.source,
                    computed_at,
                    run_id,
                )
                for i, n in enumerate(names)
            ],
        )
        members: list[tuple[Any, ...]] = []
        accounts: list[tuple[Any, ...]] = []
        for a in assignments:
            member_rows(a, members)
            accounts.append(account_row(a))
            if len(accounts) >= 5000:
                _flush(conn, members, accounts)
        _flush(conn, members, accounts)
        totals: Counter[str] = Counter()
        stale: Counter[str] = Counter()
        for (cohort, column), n in counts.items():
            totals[cohort] += n
            if column == "stale":
                stale[cohort] += n
        conn.executemany(
            "update cohorts set members = ?, stale_members = ? where segmentation = ? and name = ?",
            [(totals[n], stale[n], segmentation, n) for n in names],
        )
        facts = dict(summary() if summary else {})
        conn.execute(
            "update segment_runs set accounts = ?, in_market = ?, in_cohort = ?, tiered = ?, "
            "funnel = ? where id = ?",
            (
                int(facts.get("accounts", 0)),
                int(facts.get("in_market", 0)),
                int(facts.get("in_cohort", 0)),
                int(facts.get("tiered", 0)),
                json.dumps([list(step) for step in facts.get("funnel", ())]),
                run_id,
            ),
        )
        if guard is not None:
            guard(counts, previous)
    return counts


def _names_json(names: Sequence[str]) -> str:
    """A JSON list of cohort names (validated: letters, digits, - and _ only).

    >>> _names_json(["integration", "maturity-basic"]), _names_json([])
    ('["integration", "maturity-basic"]', '[]')
    """
    return '["' + '", "'.join(names) + '"]' if names else "[]"


def _flush(
    conn: Any, members: list[tuple[Any, ...]], accounts: list[tuple[Any, ...]]
) -> None:
    conn.executemany(
        "insert into cohort_members (segmentation, cohort, domain, tier, score, stale, reason, "
        "technologies, evidence, computed_at, run_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        members,
    )
    conn.executemany(
        "insert into segment_accounts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", accounts
    )
    members.clear()
    accounts.clear()


def _run(row: Sequence[Any]) -> SegmentRun:
    return SegmentRun(
        int(row[0]),
        row[1],
        row[2] or "",
        row[3] or "",
        row[4],
        row[5],
        int(row[6]),
        int(row[7]),
        int(row[8]),
        int(row[9]),
        tuple((str(label), int(n)) for label, n in json.loads(row[10] or "[]")),
        bool(row[11]),
    )


_RUN_COLUMNS = (
    "id, segmentation, rules_file, rules_sha256, computed_at, created_at, accounts, in_market, "
    "in_cohort, tiered, funnel, forced"
)


def list_runs(db: sqlite_utils.Database, segmentation: str | None = None) -> list[SegmentRun]:
    """Stored runs, oldest first (of one segmentation, or of all)."""
    if not db.table("segment_runs").exists():
        return []
    sql = f"select {_RUN_COLUMNS} from segment_runs"
    params: list[str] = []
    if segmentation is not None:
        sql += " where segmentation = ?"
        params.append(segmentation)
    return [_run(r) for r in db.execute(sql + " order by id", params)]


def latest_run(db: sqlite_utils.Database, segmentation: str) -> SegmentRun | None:
    """The segmentation's current run, or None."""
    row = db.execute(
        f"select {_RUN_COLUMNS} from segment_runs where segmentation = ? order by id desc limit 1",
        [segmentation],
    ).fetchone()
    return _run(row) if row else None


def find_run(
    db: sqlite_utils.Database, segmentation: str, since: str | None, current: SegmentRun
) -> SegmentRun:
    """The run to compare ``current`` with: ``since`` as a run id or an ISO date, else the one before.

    A date picks the last run computed on or before that day.
    """
    runs = [r for r in list_runs(db, segmentation) if r.id != current.id]
    listing = ", ".join(f"{r.id} ({r.computed_at[:10]})" for r in runs[-10:]) or "none"
    if since is None:
        before = [r for r in runs if r.id < current.id]
        if not before:
            raise RunNotFoundError(
                f'segmentation "{segmentation}" has one run only (run {current.id}); '
                "run `detector segment` again after the next crawl to compare"
            )
        return before[-1]
    if since.isdigit():
        for r in runs:
            if r.id == int(since):
                return r
        raise RunNotFoundError(
            f'no run {since} in segmentation "{segmentation}"; its other runs are: {listing}'
        )
    day = since.strip()[:10]
    earlier = [r for r in runs if r.computed_at[:10] <= day]
    if not earlier:
        raise RunNotFoundError(
            f'segmentation "{segmentation}" has no run on or before {day}; its runs are: {listing}'
        )
    return earlier[-1]


def _run_accounts(db: sqlite_utils.Database, run_id: int) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: r
        for r in db.execute(
            "select domain, primary_cohort, cohorts, stale_cohorts, tier, score, reasons "
            "from segment_accounts where run_id = ?",
            [run_id],
        )
    }


def diff_runs(db: sqlite_utils.Database, old: SegmentRun, new: SegmentRun) -> list[Move]:
    """Accounts that entered or left each cohort, or changed tier, from ``old`` to ``new``."""
    before = _run_accounts(db, old.id)
    after = _run_accounts(db, new.id)
    moves: list[Move] = []
    for domain in sorted(set(before) | set(after)):
        a = before.get(domain)
        b = after.get(domain)
        had = set(json.loads(a[2])) if a else set()
        has = set(json.loads(b[2])) if b else set()
        old_reasons = json.loads(a[6]) if a else {}
        new_reasons = json.loads(b[6]) if b else {}
        state = _state(b)
        for cohort in sorted(has - had):
            moves.append(Move(domain, "entered", cohort, _state(a), state, new_reasons.get(cohort, "")))
        for cohort in sorted(had - has):
            if cohort in new_reasons:
                why = new_reasons[cohort]  # still there, but stale: the reason says why
            elif b is None:
                why = "no longer among the accounts"
            elif b[1] in ("out-of-market", UNKNOWN, "stale"):
                why = f"now {b[1]}; was: {old_reasons.get(cohort, '')}"
            else:
                why = f"no longer: {old_reasons.get(cohort, '')}"
            moves.append(Move(domain, "left", cohort, _state(a), state, why))
        old_tier = a[4] if a else None
        new_tier = b[4] if b else None
        if old_tier != new_tier:
            score = f"score {_points(a[5] if a else None)} -> {_points(b[5] if b else None)}"
            moves.append(Move(domain, "tier", "", _tier(old_tier), _tier(new_tier), score))
    return moves


def _state(row: tuple[Any, ...] | None) -> str:
    return "absent" if row is None else str(row[1])


def _tier(tier: Any) -> str:
    return "no tier" if tier is None else f"tier {tier}"


def _points(score: Any) -> str:
    return "-" if score is None else f"{score:g}"


def column_values(db: sqlite_utils.Database, column: str, limit: int = 8) -> list[tuple[Any, int]]:
    """The most common values of an account column, with their counts (for error messages)."""
    if column not in db.table("accounts").columns_dict:
        return []
    return [
        (r[0], int(r[1]))
        for r in db.execute(
            f"select [{column}], count(*) from accounts group by [{column}] "
            "order by count(*) desc, [{column}] limit ?".replace("{column}", column),
            [limit],
        )
    ]


def _description(rules: Rules, name: str) -> str:
    for c in rules.cohorts:
        if c.name == name:
            return c.description
    if name == "unknown":
        return "never scanned successfully: technologies unknown (not whitespace)"
    if rules.maturity:
        for level in rules.maturity.levels:
            if level.cohort == name:
                return f"maturity score >= {level.min_score:g}"
    return ""


#: `--format`: column names for a CRM's import (our columns as its custom properties).
EXPORT_FORMATS = ("plain", "hubspot", "salesforce")


def export_name(key: str, fmt: str) -> str:
    """An export column's name in a CRM format.

    >>> export_name("primary_cohort", "hubspot"), export_name("primary_cohort", "salesforce")
    ('detector_primary_cohort', 'Detector_Primary_Cohort__c')
    >>> export_name("domain", "hubspot"), export_name("domain", "salesforce")
    ('Company Domain Name', 'Website')
    """
    if fmt == "hubspot":
        return "Company Domain Name" if key == "domain" else f"detector_{key}"
    if fmt == "salesforce":
        if key == "domain":
            return "Website"
        return "Detector_" + "_".join(w.capitalize() for w in key.split("_")) + "__c"
    return key


def export_rows(db: sqlite_utils.Database, run: SegmentRun) -> Iterator[dict[str, Any]]:
    """One row per account of a run, in domain order: every account, in the market or not.

    Columns: domain, the account columns, ``primary_cohort`` (``out-of-market``, ``unknown``,
    ``stale`` or ``none`` when no cohort applies), ``cohorts``, ``stale_cohorts``, ``tier``,
    ``score``, ``score_breakdown`` (points per cohort and firmographic bonus), ``reasons``,
    ``technologies`` and ``first_seen`` (technology -> first-seen date), ``segmented_at``.
    """
    columns: list[str] = []
    if db.table("accounts").exists():
        columns = [c for c in db.table("accounts").columns_dict if c not in ACCOUNT_INTERNAL]
    select = "".join(f", a.[{c}]" for c in columns)
    join = "left join accounts a on a.domain = s.domain" if columns else ""
    sql = (
        "select s.domain, s.primary_cohort, s.cohorts, s.stale_cohorts, s.tier, s.score, "
        f"s.score_breakdown, s.reasons, s.technologies{select} "
        f"from segment_accounts s {join} where s.run_id = ? order by s.domain"
    )
    # An account column named like an export column (a CRM's own `tier`) keeps its value
    # under an `account_` prefix instead of being overwritten.
    keys = [f"account_{c}" if c in EXPORT_KEYS else c for c in columns]
    for row in db.conn.execute(sql, [run.id]):
        first = json.loads(row[8])
        out: dict[str, Any] = {"domain": row[0]}
        out.update(zip(keys, row[9:]))
        out.update(
            primary_cohort=row[1],
            cohorts=json.loads(row[2]),
            stale_cohorts=json.loads(row[3]),
            tier=row[4],
            score=row[5],
            score_breakdown=json.loads(row[6]),
            reasons=json.loads(row[7]),
            technologies=list(first),
            first_seen=first,
            segmented_at=run.computed_at,
        )
        yield out


def write_export(
    db: sqlite_utils.Database, path: Path, run: SegmentRun | None = None, fmt: str = "plain"
) -> int:
    """Write a run's export (default: the latest run) as CSV or JSON by extension; return rows."""
    if run is None:
        runs = list_runs(db)
        if not runs:
            raise RunNotFoundError("no segmentation stored yet; run `detector segment` first")
        run = runs[-1]
    suffix = path.suffix.lower()
    rows = export_rows(db, run)
    if fmt != "plain":
        ours = {"domain", *EXPORT_KEYS}
        rows = (
            {export_name(k, fmt) if k in ours else k: v for k, v in row.items()} for row in rows
        )
    with path.open("w", encoding="utf-8", newline="") as fh:
        if suffix == ".json":
            return _write_json(fh, rows)
        return _write_csv(fh, rows)


def _write_json(fh: TextIO, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    fh.write("[")
    for row in rows:
        fh.write(",\n" if n else "\n")
        fh.write(json.dumps(row, ensure_ascii=False))
        n += 1
    fh.write("\n]\n" if n else "]\n")
    return n


def _flat_dict(value: Mapping[str, Any]) -> str:
    """A mapping as one CSV cell: ``key: value | key: value`` (points signed).

    >>> _flat_dict({"displacement": 40.0, "closed-won": -100.0}), _flat_dict({"a": "b"})
    ('displacement: +40 | closed-won: -100', 'a: b')
    """
    return " | ".join(
        f"{k}: {v:+g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items()
    )


def _write_csv(fh: TextIO, rows: Iterable[dict[str, Any]]) -> int:
    writer: Any = None
    n = 0
    lists: list[str] = []
    dicts: list[str] = []
    for row in rows:
        if writer is None:
            # Our columns, possibly renamed by --format: the lists and mappings to flatten.
            keys = list(row)
            lists = [k for k in keys if isinstance(row[k], list)]
            dicts = [k for k in keys if isinstance(row[k], dict)]
            writer = csv.writer(fh)
            writer.writerow(keys)
        for k in lists:
            row[k] = ";".join(row[k])
        for k in dicts:
            row[k] = _flat_dict(row[k])
        writer.writerow(row.values())
        n += 1
    if writer is None:
        fh.write(",".join(("domain", *EXPORT_KEYS)) + "\n")
    return n


def size_table(
    rules: Rules, counts: Counter[tuple[str, str]], primary: Mapping[str, int] | None = None
) -> list[list[str]]:
    """Rows of the cohort-size table (header first): accounts by tier, total, and ``primary``.

    Each cell counts accounts (one membership per account and cohort); ``primary`` counts the
    accounts whose primary cohort it is, so that column adds up to accounts, not memberships.
    """
    if rules.tiers is not None:
        columns: Sequence[str] = ("tier 1", "tier 2", "tier 3", "no tier", "stale")
    else:
        columns = ("no tier", "stale")
    header = [
        "cohort",
        *(c if rules.tiers else ("members" if c == "no tier" else c) for c in columns),
        "total",
    ]
    if primary is not None:
        header.append("primary")
    out = [header]
    for name in rules.cohort_names:
        values = [counts.get((name, c), 0) for c in columns]
        row = [name, *(str(v) for v in values), str(sum(values))]
        if primary is not None:
            row.append(str(primary.get(name, 0)))
        out.append(row)
    return out


def format_table(rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Align a table: the first ``left`` columns left, the others right.

    >>> print(format_table([["cohort", "total"], ["integration", "12"]]))
    cohort       total
    integration     12
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
