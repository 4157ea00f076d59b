"""``segment.run``: one segmentation from a database and a rules file, as a report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from detector.engine.signatures import load_signatures
from detector.errors import DetectorError
from detector.segment.assign import Account, Assignment, Segmenter, plural, summary_warnings
from detector.segment.rules import Vocabulary, check_columns, load_rules, needed_technologies
from detector.store.cohorts import (
    account_source,
    iter_accounts,
    size_table,
    write_export,
    write_segmentation,
)
from detector.store.store import Store
from detector.timestamps import format_time


class SegmentError(DetectorError):
    """Segmentation cannot run: no database, nothing to segment, a bad export path."""


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """What one segmentation did: cohort sizes by tier, counts, notes for the user."""

    #: A header row and one row per cohort: name, then member counts by tier column.
    table: tuple[tuple[str, ...], ...]
    accounts: int
    in_market: int
    computed_at: str
    exported: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def out_of_market(self) -> int:
        """Accounts left out by the market filters."""
        return self.accounts - self.in_market

    def sizes(self) -> list[dict[str, str | int]]:
        """The table as records (``cohort``, then one key per column), for ``--json``."""
        header = [h.replace(" ", "_") for h in self.table[0]]
        return [dict(zip(header, [r[0], *(int(v) for v in r[1:])])) for r in self.table[1:]]


def run(
    db_path: str | Path,
    rules_path: str | Path,
    *,
    signature_dirs: Sequence[str | Path] = (),
    as_of: datetime | None = None,
    export_path: str | Path | None = None,
) -> SegmentReport:
    """Assign every account to cohorts, replace the cohort tables in one transaction, report.

    Holds the database's lock while it writes; raises :class:`SegmentError`, a rules error,
    or :class:`~detector.store.lock.LockedError` (another run holds the database).
    """
    now = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc)
    export = Path(export_path) if export_path is not None else None
    if export is not None:
        check_export_path(export)
    if not Path(db_path).exists():
        raise SegmentError(
            f"{db_path}: no such database; run `detector accounts import FILE.csv` "
            "and `detector crawl` first, or pass --db"
        )
    vocabulary = Vocabulary.from_library(load_signatures(list(signature_dirs) or None))
    rules = load_rules(rules_path, vocabulary)
    with Store.open(db_path, lock="segment") as store:
        db = store.db
        source = account_source(db)
        if source.count == 0:
            raise SegmentError(
                f"{db_path}: no accounts to segment; run `detector accounts import FILE.csv` "
                "or `detector crawl` first"
            )
        check_columns(rules, source.columns(db))
        notes = []
        if source.table == "domains":
            notes.append(
                f"note: no accounts imported; segmenting {plural(source.count, 'crawled domain')} "
                "without firmographics"
            )
        tally = _Tally()
        computed_at = format_time(now)
        assignments = tally.run(Segmenter(rules, now), iter_accounts(db, source, needed_technologies(rules, vocabulary)))
        counts = write_segmentation(db, rules, assignments, computed_at)
        sizes: Counter[str] = Counter()
        for (cohort, _column), n in counts.items():
            sizes[cohort] += n
        exported = write_export(db, export) if export is not None else None
    table = tuple(tuple(str(c) for c in row) for row in size_table(rules, counts))
    return SegmentReport(
        table=table, accounts=tally.seen, in_market=tally.in_market, computed_at=computed_at,
        exported=exported, notes=tuple(notes),
        warnings=tuple(summary_warnings(rules, sizes, tally.stale_scans)),
    )


def check_export_path(path: Path) -> None:
    """Raise :class:`SegmentError` unless ``path`` is a .csv or .json file in an existing folder."""
    if path.suffix.lower() not in (".csv", ".json"):
        raise SegmentError(f"{path}: write FILE.csv or FILE.json")
    if not path.parent.is_dir():
        raise SegmentError(f"{path}: the folder {path.parent} does not exist; create it or pick another path")


class _Tally:
    """Counts accounts seen and in market while they stream through."""

    def __init__(self) -> None:
        self.seen = 0
        self.in_market = 0
        self.stale_scans = 0

    def run(self, segmenter: Segmenter, accounts: Iterable[Account]) -> Iterator[Assignment]:
        for account in accounts:
            self.seen += 1
            if segmenter.in_market(account):
                self.in_market += 1
                assignment = segmenter.assign(account)
                self.stale_scans += assignment.scan_stale
                yield assignment
