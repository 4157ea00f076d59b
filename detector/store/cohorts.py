"""Read accounts and detections for segmentation; write `cohorts` and `cohort_members`."""

from __future__ import annotations

import csv
import itertools
import json
import operator
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from detector.segment.assign import Account, AccountValue, Assignment, Seen
from detector.segment.rules import Rules
from detector.store.transaction import transaction

ACCOUNT_INTERNAL = ("domain", "imported_at")
EXPORT_KEYS = ("cohorts", "stale_cohorts", "tier", "score", "reasons", "technologies")


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
    db: sqlite_utils.Database, source: Source, technologies: Collection[str] | None = None
) -> Iterator[Account]:
    """Accounts with their scan state and active detections, streamed in domain order.

    ``technologies`` limits the detections read to those a rule can look at.
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
    groups = _detection_groups(db, technologies)
    pending = next(groups, None)
    cursor = db.conn.execute(sql)
    for row in cursor:
        domain = row[0]
        while pending is not None and pending[0] < domain:
            pending = next(groups, None)
        seen: tuple[Seen, ...] = ()
        if pending is not None and pending[0] == domain:
            seen = pending[1]
            pending = next(groups, None)
        fields: dict[str, AccountValue] = dict(zip(columns, row[3:]))
        yield Account(domain, fields, row[1], row[2], seen)


def _detection_groups(
    db: sqlite_utils.Database, technologies: Collection[str] | None
) -> Iterator[tuple[str, tuple[Seen, ...]]]:
    """Active detections grouped by domain, in domain order (the merge side of iter_accounts)."""
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

    sql = "select domain, technology, version, categories, last_seen from detections where status = 'active'"
    params: list[str] = []
    if technologies is not None:
        sql += " and technology in (select value from json_each(?))"
        params.append(json.dumps(sorted(technologies)))
    cursor = db.conn.execute(sql + " order by domain", params)
    for domain, rows in itertools.groupby(cursor, key=operator.itemgetter(0)):
        yield domain, tuple(Seen(r[1], r[2] or None, parse(r[3]), r[4] or "") for r in rows)


def write_segmentation(
    db: sqlite_utils.Database, rules: Rules, assignments: Iterable[Assignment], computed_at: str
) -> Counter[tuple[str, str]]:
    """Replace the previous cohorts atomically; return counts by (cohort, tier column)."""
    counts: Counter[tuple[str, str]] = Counter()

    def rows() -> Iterator[tuple[Any, ...]]:
        for a in assignments:
            for m in a.memberships:
                column = "stale" if m.stale else (f"tier {a.tier}" if a.tier else "no tier")
                counts[(m.cohort, column)] += 1
                technologies = sorted({s.technology for s in m.evidence})
                evidence = [
                    {"technology": s.technology, "version": s.version, "last_seen": s.last_seen}
                    for s in m.evidence
                ]
                yield (
                    m.cohort,
                    m.domain,
                    a.tier if m.cohort != "unknown" else None,
                    a.score if m.cohort != "unknown" else None,
                    int(m.stale),
                    m.reason,
                    json.dumps(technologies),
                    json.dumps(evidence),
                    computed_at,
                )

    with transaction(db) as conn:
        conn.execute("delete from cohort_members")
        conn.execute("delete from cohorts")
        names = rules.cohort_names
        conn.executemany(
            "insert into cohorts (name, kind, description, position, members, stale_members, "
            "rules_file, computed_at) values (?, ?, ?, ?, 0, 0, ?, ?)",
            [
                (n, rules.kind_of(n), _description(rules, n), i, rules.source, computed_at)
                for i, n in enumerate(names)
            ],
        )
        conn.executemany("insert into cohort_members values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        totals: Counter[str] = Counter()
        stale: Counter[str] = Counter()
        for (cohort, column), n in counts.items():
            totals[cohort] += n
            if column == "stale":
                stale[cohort] += n
        conn.executemany(
            "update cohorts set members = ?, stale_members = ? where name = ?",
            [(totals[n], stale[n], n) for n in names],
        )
    return counts


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


def export_rows(db: sqlite_utils.Database) -> Iterator[dict[str, Any]]:
    """One row per segmented account: domain, account columns, cohorts, tier, reasons, technologies."""
    columns: list[str] = []
    if db.table("accounts").exists():
        columns = [c for c in db.table("accounts").columns_dict if c not in ACCOUNT_INTERNAL]
    select = "".join(f", a.[{c}]" for c in columns)
    join = "left join accounts a on a.domain = m.domain" if columns else ""
    sql = (
        f"select m.domain, m.cohort, m.tier, m.score, m.stale, m.reason, m.technologies{select} "
        f"from cohort_members m join cohorts c on c.name = m.cohort {join} "
        "order by m.domain, c.position"
    )
    # An account column named like an export column (a CRM's own `tier`) keeps its value
    # under an `account_` prefix instead of being overwritten.
    keys = [f"account_{c}" if c in EXPORT_KEYS else c for c in columns]
    current: dict[str, Any] | None = None
    for row in db.conn.execute(sql):
        domain, cohort, tier, score, stale, reason, techs = row[:7]
        if current is None or current["domain"] != domain:
            if current is not None:
                yield current
            current = {"domain": domain}
            current.update(zip(keys, row[7:]))
            current.update(
                cohorts=[], stale_cohorts=[], tier=None, score=None, reasons={}, technologies=[]
            )
        (current["stale_cohorts"] if stale else current["cohorts"]).append(cohort)
        if tier is not None:
            current["tier"] = tier
        if score is not None:
            current["score"] = score
        current["reasons"][cohort] = reason
        for t in json.loads(techs):
            if t not in current["technologies"]:
                current["technologies"].append(t)
    if current is not None:
        yield current


def write_export(db: sqlite_utils.Database, path: Path) -> int:
    """Write the export as CSV or JSON (by extension); return the number of accounts."""
    suffix = path.suffix.lower()
    with path.open("w", encoding="utf-8", newline="") as fh:
        if suffix == ".json":
            return _write_json(fh, export_rows(db))
        return _write_csv(fh, export_rows(db))


def _write_json(fh: TextIO, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    fh.write("[")
    for row in rows:
        fh.write(",\n" if n else "\n")
        fh.write(json.dumps(row, ensure_ascii=False))
        n += 1
    fh.write("\n]\n" if n else "]\n")
    return n


def _write_csv(fh: TextIO, rows: Iterable[dict[str, Any]]) -> int:
    writer: csv.DictWriter[str] | None = None
    n = 0
    for row in rows:
        flat = dict(row)
        flat["cohorts"] = ";".join(row["cohorts"])
        flat["stale_cohorts"] = ";".join(row["stale_cohorts"])
        flat["reasons"] = " | ".join(f"{k}: {v}" for k, v in row["reasons"].items())
        flat["technologies"] = ";".join(row["technologies"])
        if writer is None:
            writer = csv.DictWriter(fh, fieldnames=list(flat))
            writer.writeheader()
        writer.writerow(flat)
        n += 1
    if writer is None:
        fh.write("domain,cohorts,stale_cohorts,tier,score,reasons,technologies\n")
    return n


def size_table(rules: Rules, counts: Counter[tuple[str, str]]) -> list[list[str]]:
    """Rows of the cohort-size table (header first): tiers when the rules define them."""
    if rules.tiers is not None:
        columns: Sequence[str] = ("tier 1", "tier 2", "tier 3", "no tier", "stale")
    else:
        columns = ("no tier", "stale")
    header = [
        "cohort",
        *(c if rules.tiers else ("members" if c == "no tier" else c) for c in columns),
        "total",
    ]
    out = [header]
    for name in rules.cohort_names:
        values = [counts.get((name, c), 0) for c in columns]
        out.append([name, *(str(v) for v in values), str(sum(values))])
    return out


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Align a table: first column left, the others right.

    >>> print(format_table([["cohort", "total"], ["integration", "12"]]))
    cohort       total
    integration     12
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
