"""``segment.run``: one segmentation from a database and a rules file, as a report.

Each run is kept (``segment_runs``, ``segment_accounts``) under a segmentation name, so
:func:`diff` can say who moved since an earlier run and the export covers every account.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

from detector.engine.signatures import load_signatures
from detector.errors import DetectorError
from detector.segment.assign import (
    Account,
    Assignment,
    Segmenter,
    balance_warnings,
    describe,
    is_segment,
    plural,
    summary_warnings,
)
from detector.segment.rules import (
    FieldTest,
    Rules,
    Vocabulary,
    load_rules,
    needed_technologies,
    uses_adoption,
    uses_confidence,
    uses_pages,
    uses_removed,
)
from detector.store.cohorts import (
    DEFAULT_SEGMENTATION,
    EXPORT_FORMATS,
    Move,
    SegmentRun,
    account_source,
    column_values,
    diff_runs,
    find_run,
    iter_accounts,
    latest_run,
    list_runs,
    size_table,
    write_export,
    write_segmentation,
)
from detector.store.store import Store
from detector.timestamps import format_time
from detector.timestamps import now as clock_now


class SegmentError(DetectorError):
    """Segmentation cannot run: no database, nothing to segment, a bad export path."""


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """What one segmentation did: sizes by tier, the funnel, overlaps, notes for the user."""

    #: A header row and one row per cohort: name, member counts by tier column, ``primary``.
    table: tuple[tuple[str, ...], ...]
    accounts: int
    in_market: int
    computed_at: str
    exported: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    run_id: int = 0
    segmentation: str = DEFAULT_SEGMENTATION
    #: (step, accounts left) from the whole account list to tiered accounts.
    funnel: tuple[tuple[str, int], ...] = ()
    #: A header row and one row per segment: accounts in both (the diagonal: in the segment).
    overlap: tuple[tuple[str, ...], ...] = ()
    memberships: int = 0
    forced: bool = False

    @property
    def out_of_market(self) -> int:
        """Accounts left out by the market filters."""
        return self.accounts - self.in_market

    def sizes(self) -> list[dict[str, str | int]]:
        """The table as records (``cohort``, then one key per column), for ``--json``."""
        header = [h.replace(" ", "_") for h in self.table[0]]
        return [dict(zip(header, [r[0], *(int(v) for v in r[1:])])) for r in self.table[1:]]

    def to_json(self) -> dict[str, Any]:
        """Everything the report says, as plain data (``segment --json``)."""
        overlap: dict[str, dict[str, int]] = {}
        if self.overlap:
            names = self.overlap[0][1:]
            for row in self.overlap[1:]:
                overlap[row[0]] = {n: int(v) for n, v in zip(names, row[1:])}
        return {
            "run": self.run_id,
            "segmentation": self.segmentation,
            "computed_at": self.computed_at,
            "accounts": self.accounts,
            "in_market": self.in_market,
            "memberships": self.memberships,
            "funnel": [{"step": step, "accounts": n} for step, n in self.funnel],
            "sizes": self.sizes(),
            "overlap": overlap,
            "exported": self.exported,
            "forced": self.forced,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class DiffReport:
    """`segment diff`: the two runs compared and the moves between them."""

    old: SegmentRun
    new: SegmentRun
    moves: tuple[Move, ...]

    def records(self) -> list[dict[str, str]]:
        """The moves as records (``--json``, ``--csv``)."""
        return [
            {
                "domain": m.domain,
                "change": m.change,
                "cohort": m.cohort,
                "before": m.before,
                "after": m.after,
                "reason": m.reason,
            }
            for m in self.moves
        ]


def run(
    db_path: str | Path,
    rules_path: str | Path,
    *,
    signature_dirs: Sequence[str | Path] = (),
    as_of: datetime | None = None,
    export_path: str | Path | None = None,
    export_format: str = "plain",
    name: str = DEFAULT_SEGMENTATION,
    force: bool = False,
) -> SegmentReport:
    """Assign every account to cohorts, store the run under ``name`` in one transaction, report.

    Refuses (:class:`SegmentError`, the previous result kept) a run whose market matches no
    account, or that would leave a segmentation that had members with none, unless ``force``.
    Holds the database's lock while it writes; raises :class:`SegmentError`, a rules error,
    or :class:`~detector.store.lock.LockedError` (another run holds the database).
    """
    now = (as_of or clock_now()).astimezone(timezone.utc)
    export = Path(export_path) if export_path is not None else None
    if export is not None:
        check_export_path(export)
    if export_format not in EXPORT_FORMATS:
        raise SegmentError(f"unknown export format {export_format!r}; use one of: {', '.join(EXPORT_FORMATS)}")
    check_name(name)
    if not Path(db_path).exists():
        raise SegmentError(
            f"{db_path}: no such database; run `detector accounts import FILE.csv` "
            "and `detector crawl` first, or pass --db"
        )
    vocabulary = Vocabulary.from_library(load_signatures(list(signature_dirs) or None))
    with Store.open(db_path, lock="segment") as store:
        db = store.db
        source = account_source(db)
        if source.count == 0:
            raise SegmentError(
                f"{db_path}: no accounts to segment; run `detector accounts import FILE.csv` "
                "or `detector crawl` first"
            )
        # Every rule problem, account columns included, is reported in one pass.
        rules = load_rules(rules_path, vocabulary, columns=source.columns(db))
        notes = []
        if source.table == "domains":
            notes.append(
                f"note: no accounts imported; segmenting {plural(source.count, 'crawled domain')} "
                "without firmographics"
            )
        segmenter = Segmenter(rules, now)
        tally = _Tally(segmenter)
        computed_at = format_time(now)
        accounts = iter_accounts(
            db,
            source,
            needed_technologies(rules, vocabulary),
            removed=uses_removed(rules),
            pages=uses_pages(rules),
            first_scans=uses_adoption(rules),
            confidence=uses_confidence(rules),
        )

        def guard(counts: Counter[tuple[str, str]], previous: SegmentRun | None) -> None:
            if force:
                return
            kept = (
                f"; the previous result (run {previous.id} of {previous.computed_at[:10]}) is kept"
                if previous
                else "; nothing was stored"
            )
            if tally.seen and tally.in_market == 0:
                raise SegmentError(_empty_market(db, rules, tally) + kept + " (--force stores it anyway)")
            if previous is not None and previous.in_cohort > 0 and tally.with_members == 0:
                raise SegmentError(
                    f'{rules.source}: this run puts no account in any cohort, but segmentation "{name}" '
                    f"had {plural(previous.in_cohort, 'account')} in cohorts (run {previous.id}); "
                    f"check the rules and the crawl{kept} (--force stores it anyway)"
                )

        counts = write_segmentation(
            db,
            rules,
            tally.run(accounts),
            computed_at,
            segmentation=name,
            created_at=format_time(clock_now()),
            summary=tally.summary,
            guard=guard,
            forced=force,
        )
        current = latest_run(db, name)
        assert current is not None
        exported = write_export(db, export, current, export_format) if export is not None else None
    sizes: Counter[str] = Counter()
    for (cohort, _column), n in counts.items():
        sizes[cohort] += n
    table = tuple(tuple(str(c) for c in row) for row in size_table(rules, counts, tally.primary))
    warnings = summary_warnings(rules, sizes, tally.stale_scans)
    warnings += balance_warnings(rules, tally.by_cohort, tally.in_market)
    if force and (tally.in_market == 0 or tally.with_members == 0):
        warnings.append("warning: stored with --force although no account is in a cohort")
    return SegmentReport(
        table=table,
        accounts=tally.seen,
        in_market=tally.in_market,
        computed_at=computed_at,
        exported=exported,
        notes=tuple(notes),
        warnings=tuple(warnings),
        run_id=current.id,
        segmentation=name,
        funnel=tally.funnel(),
        overlap=tally.overlap_table(rules),
        memberships=sum(counts.values()),
        forced=force,
    )


def diff(
    db_path: str | Path, *, name: str = DEFAULT_SEGMENTATION, since: str | None = None
) -> DiffReport:
    """Compare a segmentation's latest run with an earlier one (``since``: a run id or a date)."""
    check_name(name)
    if not Path(db_path).exists():
        raise SegmentError(f"{db_path}: no such database; pass --db")
    with Store.open(db_path) as store:
        current = latest_run(store.db, name)
        if current is None:
            names = sorted({r.segmentation for r in list_runs(store.db)})
            have = f"; the stored ones are: {', '.join(names)}" if names else ""
            raise SegmentError(
                f'{db_path}: no segmentation "{name}" stored yet{have}; run `detector segment` first'
            )
        old = find_run(store.db, name, since, current)
        moves = diff_runs(store.db, old, current)
    return DiffReport(old, current, tuple(moves))


def runs(db_path: str | Path, *, name: str | None = None) -> list[SegmentRun]:
    """The stored runs, oldest first (of one segmentation, or all)."""
    if not Path(db_path).exists():
        raise SegmentError(f"{db_path}: no such database; pass --db")
    with Store.open(db_path) as store:
        return list_runs(store.db, name)


def check_name(name: str) -> None:
    """Raise :class:`SegmentError` unless ``name`` is a usable segmentation name."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SegmentError(
            f"segmentation name {name!r}: use letters, digits, '-', '_' or '.' (e.g. `q4-email`)"
        )


def check_export_path(path: Path) -> None:
    """Raise :class:`SegmentError` unless ``path`` is a .csv or .json file in an existing folder."""
    if path.suffix.lower() not in (".csv", ".json"):
        raise SegmentError(f"{path}: write FILE.csv or FILE.json")
    if not path.parent.is_dir():
        raise SegmentError(f"{path}: the folder {path.parent} does not exist; create it or pick another path")


def _empty_market(db: Any, rules: Rules, tally: _Tally) -> str:
    """Why no account is in the market: the first test that leaves none, and what the data holds."""
    passed = tally.seen
    for i, (item, _, _) in enumerate(tally.segmenter.market_steps):
        passed -= tally.stopped[i]
        if passed:
            continue
        where = f"{rules.source} line {item.line}" if isinstance(item, FieldTest) else rules.source
        text = f"{where}: the market test `{describe(item)}` matches none of the {plural(tally.seen, 'account')}"
        if isinstance(item, FieldTest):
            values = column_values(db, item.column)
            shown = ", ".join(f"{'(blank)' if v in (None, '') else v} ({n})" for v, n in values)
            text += f"; the column `{item.column}` holds: {shown or 'nothing'}"
        return text + "; fix the test"
    return f"{rules.source}: the market matches none of the {plural(tally.seen, 'account')}; fix its tests"


class _Tally:
    """Counts what the accounts do while they stream through: the funnel, sizes, overlaps."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter
        rules = segmenter.rules
        self.seen = 0
        self.in_market = 0
        self.stale_scans = 0
        self.scanned = 0
        self.in_cohort = 0
        self.with_members = 0  # in a segment, stale memberships included
        self.tiered = 0
        self.stopped: Counter[int] = Counter()  # market step at which accounts left
        self.primary: Counter[str] = Counter()
        self.by_cohort: Counter[str] = Counter()
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.segments = {c for c in rules.cohort_names if is_segment(rules, c)}

    def run(self, accounts: Iterable[Account]) -> Iterator[Assignment]:
        segmenter = self.segmenter
        steps = len(segmenter.market_steps)
        segments = self.segments
        for account in accounts:
            self.seen += 1
            step = segmenter.market_step(account)
            if step < steps:
                self.stopped[step] += 1
                yield segmenter.out_of_market(account)
                continue
            self.in_market += 1
            a = segmenter.assign(account)
            self.stale_scans += a.scan_stale
            self.scanned += account.last_ok_at is not None
            self.primary[a.primary] += 1
            live = [m.cohort for m in a.memberships if not m.stale]
            self.with_members += any(m.cohort in segments for m in a.memberships)
            for cohort in live:
                self.by_cohort[cohort] += 1
            mine = [c for c in live if c in segments]
            if mine:
                self.in_cohort += 1
                for pair in combinations(mine, 2):
                    self.pairs[pair] += 1
            self.tiered += a.tier is not None
            yield a

    def funnel(self) -> tuple[tuple[str, int], ...]:
        rules = self.segmenter.rules
        out = [("accounts", self.seen)]
        left = self.seen
        for i, (item, _, _) in enumerate(self.segmenter.market_steps):
            left -= self.stopped[i]
            runs = "" if isinstance(item, FieldTest) else "runs "
            out.append((f"market: {runs}{describe(item)}", left))
        out.append(("scanned successfully", self.scanned))
        if rules.max_age_days is not None:
            out.append((f"scanned within {rules.max_age_days} days", self.scanned - self.stale_scans))
        out.append(("in a cohort (maturity levels aside)", self.in_cohort))
        if rules.tiers is not None:
            out.append(("tiered", self.tiered))
        return tuple(out)

    def summary(self) -> Mapping[str, Any]:
        return {
            "accounts": self.seen,
            "in_market": self.in_market,
            "in_cohort": self.in_cohort,
            "tiered": self.tiered,
            "funnel": self.funnel(),
        }

    def overlap_table(self, rules: Rules) -> tuple[tuple[str, ...], ...]:
        names = [c for c in rules.cohort_names if c in self.segments]
        if len(names) < 2:
            return ()
        rows: list[tuple[str, ...]] = [("cohort", *names)]
        for a in names:
            cells = []
            for b in names:
                n = self.by_cohort[a] if a == b else self.pairs[(a, b)] + self.pairs[(b, a)]
                cells.append(str(n))
            rows.append((a, *cells))
        return tuple(rows)
