"""Change history: the pure comparison, then the rules as recorded in a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils

from detector.engine.verdict import SiteDetection
from detector.store.history import DurationError, Stored, compare, parse_duration
from detector.store.scans import ScanResult, detections_for, record_scans
from detector.store.schema import MIGRATIONS, migrate
from detector.store.store import open_database


def saw(technology: str, version: str | None) -> SiteDetection:
    return SiteDetection(technology, version, 100, (), ())


@pytest.mark.parametrize(
    ("stored", "seen", "counts", "expected"),
    [
        ({}, [saw("Stripe", None)], True, [("Stripe", "added", None, None)]),
        ({"WordPress": Stored("WordPress", "6.4")}, [saw("WordPress", "6.5")], True,
         [("WordPress", "version_changed", "6.4", "6.5")]),
        ({"WordPress": Stored("WordPress", "6.4")}, [saw("WordPress", None)], True, []),
        ({"WordPress": Stored("WordPress", None)}, [saw("WordPress", "6.5")], True,
         [("WordPress", "version_changed", None, "6.5")]),
        ({"Stripe": Stored("Stripe", None)}, [], True, []),
        ({"Stripe": Stored("Stripe", None, miss_count=1)}, [], True, [("Stripe", "removed", None, None)]),
        ({"Stripe": Stored("Stripe", None, miss_count=1)}, [], False, []),
        ({"Stripe": Stored("Stripe", "3", "removed", 2)}, [], True, []),
        ({"Stripe": Stored("Stripe", "3", "removed", 2)}, [saw("Stripe", None)], True,
         [("Stripe", "added", None, "3")]),
        ({}, [saw("PHP", None), saw("PHP", None)], True, [("PHP", "added", None, None)]),
    ],
    ids=["new", "version-up", "version-unseen-keeps", "version-learned", "first-miss", "second-miss-removes",
         "partial-never-counts", "removed-stays-removed", "comes-back", "duplicate-seen"],
)
def test_compare(stored: dict[str, Stored], seen: list[SiteDetection], counts: bool,
                 expected: list[tuple[str, str, str | None, str | None]]) -> None:
    plan = compare("a.test", stored, seen, at="T", counts_misses=counts, miss_threshold=2)
    assert [(c.technology, c.kind, c.old_version, c.new_version) for c in plan.changes] == expected
    assert all(c.domain == "a.test" and c.at == "T" for c in plan.changes)


def test_compare_counts_misses_until_the_threshold() -> None:
    plan = compare("a.test", {"A": Stored("A", None, miss_count=1)}, [], at="T", counts_misses=True, miss_threshold=3)
    assert plan.missed == (("A", 2),) and plan.removed == ()
    with pytest.raises(ValueError):
        compare("a.test", {}, [], at="T", counts_misses=True, miss_threshold=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
     ("2w", timedelta(weeks=2)), ("90s", timedelta(seconds=90)), ("0", timedelta(0)), (" 1.5D ", timedelta(hours=36))],
    ids=["minutes", "hours", "days", "weeks", "seconds", "zero", "fraction-upper"],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "7x", "d7", "", "-1d", "7 days"], ids=["no-unit", "bad-unit", "unit-first",
                                                                          "empty", "negative", "word"])
def test_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(DurationError, match=r"is not a duration; write a number and a unit: 30m, 12h, 7d or 2w"):
        parse_duration(text)


# ---------------------------------------------------------------------------- in SQLite

def scan(at: str, *techs: tuple[str, str | None], status: str = "ok", pages_failed: int = 0,
         detected: bool = True, run: str = "r") -> ScanResult:
    return ScanResult(
        domain="acme.test", run_id=run, started_at=at, finished_at=at, status=status,
        error_kind=None if status == "ok" else "timeout", pages=1 if status == "ok" else 0,
        detections=tuple(SiteDetection(t, v, 100, ("CMS",), ()) for t, v in techs),
        pages_failed=pages_failed, detected=detected,
    )


def events(db: sqlite_utils.Database) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(r["at"][:10], r["technology"], r["kind"], r["old_version"], r["new_version"])
            for r in db.query("select * from changes order by id")]


def state(db: sqlite_utils.Database) -> dict[str, tuple[str, str | None, int, str, str | None]]:
    return {r["technology"]: (r["status"], r["version"], r["miss_count"], r["first_seen"][:10], r["removed_at"])
            for r in detections_for(db, "acme.test")}


def test_lifecycle_in_sqlite(tmp_path: Path) -> None:
    db = open_database(tmp_path / "h.db")
    record_scans(db, [scan("2026-01-01T00:00:00Z", ("WordPress", "6.4"), ("Stripe", None))])
    record_scans(db, [scan("2026-01-02T00:00:00Z", ("WordPress", "6.5"))])  # Stripe missed once
    assert state(db)["Stripe"] == ("active", None, 1, "2026-01-01", None)
    record_scans(db, [scan("2026-01-03T00:00:00Z", status="error")])  # failed: changes nothing
    record_scans(db, [scan("2026-01-04T00:00:00Z", ("WordPress", "6.5"), pages_failed=1)])  # partial
    record_scans(db, [scan("2026-01-05T00:00:00Z", detected=False)])  # --no-detect
    assert state(db)["Stripe"] == ("active", None, 1, "2026-01-01", None)
    assert state(db)["WordPress"][0] == "active"
    record_scans(db, [scan("2026-01-06T00:00:00Z", ("WordPress", "6.5"))])  # second counting miss
    assert state(db)["Stripe"] == ("removed", None, 2, "2026-01-01", "2026-01-06T00:00:00Z")
    record_scans(db, [scan("2026-01-07T00:00:00Z", ("WordPress", "6.5"), ("Stripe", None))])  # back
    assert state(db)["Stripe"] == ("active", None, 0, "2026-01-01", None)
    assert events(db) == [
        ("2026-01-01", "Stripe", "added", None, None),
        ("2026-01-01", "WordPress", "added", None, "6.4"),
        ("2026-01-02", "WordPress", "version_changed", "6.4", "6.5"),
        ("2026-01-06", "Stripe", "removed", None, None),
        ("2026-01-07", "Stripe", "added", None, None),
    ]
    scans = list(db.query("select id, status, pages_failed, counted from scans order by id"))
    assert [(s["status"], s["pages_failed"], s["counted"]) for s in scans] == [
        ("ok", 0, 1), ("ok", 0, 1), ("error", 0, 0), ("ok", 1, 0), ("ok", 0, 0), ("ok", 0, 1), ("ok", 0, 1)]
    # Every event names the scan that caused it.
    assert [r["scan_id"] for r in db.query("select scan_id from changes order by id")] == [
        scans[0]["id"], scans[0]["id"], scans[1]["id"], scans[5]["id"], scans[6]["id"]]


def test_a_failed_scan_keeps_every_detection(tmp_path: Path) -> None:
    db = open_database(tmp_path / "h.db")
    record_scans(db, [scan("2026-01-01T00:00:00Z", ("WordPress", "6.4"), ("PHP", None))])
    before = state(db)
    for day in range(2, 9):
        record_scans(db, [scan(f"2026-01-0{day}T00:00:00Z", status="error")])
    assert state(db) == before
    assert len(events(db)) == 2


def test_miss_threshold_is_a_parameter(tmp_path: Path) -> None:
    db = open_database(tmp_path / "h.db")
    record_scans(db, [scan("2026-01-01T00:00:00Z", ("Stripe", None))])
    record_scans(db, [scan("2026-01-02T00:00:00Z")], miss_threshold=1)
    assert state(db)["Stripe"][0] == "removed"


HISTORY_MIGRATION = next(n for n, _, func in MIGRATIONS if func.__name__.endswith("_history"))


def test_migration_backfills_history_of_an_old_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr("detector.store.schema.MIGRATIONS", MIGRATIONS[:1])
    old = open_database(path)
    old.execute("insert into detections (domain, technology, version, first_seen, last_seen) values "
                "('a.test', 'WordPress', '6.4', '2025-05-01T00:00:00Z', '2025-06-01T00:00:00Z')")
    old.execute("insert into detections (domain, technology, first_seen, last_seen, status, removed_at) values "
                "('a.test', 'Stripe', '2025-05-01T00:00:00Z', '2025-05-01T00:00:00Z', 'removed', '2025-06-01T00:00:00Z')")
    old.conn.commit()
    old.close()
    monkeypatch.undo()
    db = sqlite_utils.Database(sqlite3.connect(path))
    assert HISTORY_MIGRATION in migrate(db)
    assert [(r["technology"], r["kind"], r["at"]) for r in db.query("select * from changes order by id")] == [
        ("Stripe", "added", "2025-05-01T00:00:00Z"),
        ("WordPress", "added", "2025-05-01T00:00:00Z"),
        ("Stripe", "removed", "2025-06-01T00:00:00Z"),
    ]
    assert {r["miss_count"] for r in db.query("select miss_count from detections")} == {0}
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("insert into changes (domain, technology, kind, at) values ('a.test', 'X', 'renamed', 'T')")


def test_a_technology_the_library_cannot_detect_is_never_missed(tmp_path: Path) -> None:
    """Re-scanning with another --signatures set must not remove what that set does not know."""
    db = open_database(tmp_path / "h.db")
    record_scans(db, [scan("2026-01-01T00:00:00Z", ("WordPress", "6.4"), ("Stripe", None))])
    for day in (2, 3, 4):
        record_scans(db, [scan(f"2026-01-0{day}T00:00:00Z", ("WordPress", "6.4"))], known={"WordPress"})
    assert state(db)["Stripe"] == ("active", None, 0, "2026-01-01", None)
    record_scans(db, [scan("2026-01-05T00:00:00Z", ("WordPress", "6.4"))], known={"WordPress", "Stripe"})
    assert state(db)["Stripe"][2] == 1


@pytest.mark.parametrize("module", ["detector.store.history", "detector.store.freshness", "detector.store.lock"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
