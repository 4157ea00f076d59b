"""Foreign keys (migration 10): scans and detections name a known domain, detections a known
technology; SQLite refuses the rest, and a database made before them migrates whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from detector.engine.signatures import load_signatures
from detector.engine.verdict import SiteDetection
from detector.store.scans import ScanResult
from detector.store.schema import MIGRATIONS
from detector.store.store import Store
from detector.store.transaction import transaction
from tests.conftest import TEST_SIGNATURES

AT = "2026-11-01T10:00:00Z"


def scan(domain: str, *techs: str, at: str = AT) -> ScanResult:
    return ScanResult(domain=domain, run_id="r-" + at, started_at=at, finished_at=at, status="ok", pages=1,
                      detections=tuple(SiteDetection(t, "1.0", 100, ("CMS",), ()) for t in techs))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO scans (run_id, domain, started_at, status) VALUES ('r', 'nowhere.test', 'x', 'ok')",
        "INSERT INTO detections (domain, technology, first_seen, last_seen) VALUES ('nowhere.test', 'PressCMS', 'x', 'x')",
        "INSERT INTO detections (domain, technology, first_seen, last_seen) VALUES ('a.test', 'NoSuchTech', 'x', 'x')",
        "DELETE FROM domains WHERE domain = 'a.test'",
        "DELETE FROM technologies WHERE name = 'PressCMS'",
    ],
    ids=["scan-unknown-domain", "detection-unknown-domain", "detection-unknown-technology",
         "delete-scanned-domain", "delete-detected-technology"],
)
def test_a_row_without_its_parent_is_refused(tmp_path: Path, sql: str) -> None:
    with Store.open(tmp_path / "fk.db") as store:
        store.mirror_library(load_signatures([TEST_SIGNATURES]))
        store.record_scans([scan("a.test", "PressCMS")])
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
            store.db.execute(sql)
        assert store.db.execute("SELECT count(*) FROM detections").fetchone()[0] == 1


def test_the_links_are_declared(tmp_path: Path) -> None:
    with Store.open(tmp_path / "fk.db") as store:
        links = {(t, r[3], r[2], r[4]) for t in ("scans", "detections")
                 for r in store.db.execute(f"PRAGMA foreign_key_list({t})")}
    assert links == {("scans", "domain", "domains", "domain"), ("detections", "domain", "domains", "domain"),
                     ("detections", "technology", "technologies", "name")}


def test_a_technology_the_library_lacks_is_kept_and_marked(tmp_path: Path) -> None:
    """A detection of a technology outside the mirrored library (or before any mirror) is
    stored; its technologies row says ``in_library = 0``; a later mirror neither drops it
    nor fails, and deletes only the unreferenced technologies the library no longer has."""
    library = load_signatures([TEST_SIGNATURES])
    with Store.open(tmp_path / "fk.db") as store:
        store.record_scans([scan("early.test", "PressCMS", "Retired Tool")])  # nothing mirrored yet
        store.mirror_library(library)
        store.db.execute("INSERT INTO technologies (name, in_library) VALUES ('Unused Old', 1)")
        store.mirror_library(library)
        rows = {r["name"]: r for r in store.db.query("SELECT name, slug, in_library, website FROM technologies")}
    assert rows["Retired Tool"]["in_library"] == 0 and rows["Retired Tool"]["slug"] == "retired-tool"
    assert rows["PressCMS"]["in_library"] == 1
    assert "Unused Old" not in rows
    assert len(rows) == len(library.signatures) + 1


def _database_before_migration_10(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    db.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    for number, name, func in MIGRATIONS:
        if number >= 10:
            break
        with transaction(db):
            func(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [number, name, AT])
    return db


def test_an_existing_database_migrates_with_no_row_lost(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = _database_before_migration_10(path)
    db.execute("INSERT INTO domains (domain, added_at, last_status) VALUES ('a.test', ?, 'ok')", [AT])
    db.execute("INSERT INTO technologies (name, categories, website) VALUES ('PressCMS', '[\"CMS\"]', 'https://p.test')")
    for i, domain in enumerate(["a.test", "a.test", "orphan.test"]):
        db.execute("INSERT INTO scans (id, run_id, domain, started_at, status, pages_failed, dns_status) "
                   "VALUES (?, 'r1', ?, ?, 'ok', 0, 'ok')", [10 + i, domain, AT])
    db.execute("INSERT INTO detections (domain, technology, version, categories, first_seen, last_seen, miss_count) "
               "VALUES ('a.test', 'PressCMS', '2', '[\"CMS\"]', ?, ?, 1)", [AT, AT])
    db.execute("INSERT INTO detections (domain, technology, categories, first_seen, last_seen) "
               "VALUES ('a.test', 'Gone From Library', '[\"Analytics\"]', ?, ?)", [AT, AT])
    db.execute("INSERT INTO detections (domain, technology, first_seen, last_seen) "
               "VALUES ('lost.test', 'PressCMS', ?, ?)", [AT, AT])
    db.execute("INSERT INTO changes (domain, technology, kind, at, scan_id) VALUES ('a.test', 'PressCMS', 'added', ?, 11)",
               [AT])
    # What a later migration might have added before this one runs: a column, a trigger.
    db.execute("ALTER TABLE scans ADD COLUMN later_note TEXT NOT NULL DEFAULT 'kept'")
    db.execute("CREATE TABLE scan_log (scan_id INTEGER)")
    db.execute("CREATE TRIGGER scans_logged AFTER INSERT ON scans BEGIN INSERT INTO scan_log VALUES (new.id); END")
    tables = ("scans", "detections", "changes", "technologies")
    before = {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}"))) for t in tables}
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    views = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    db.close()

    with Store.open(path) as store:
        after_db = store.db
        assert [r[0] for r in after_db.execute("SELECT id FROM _migrations ORDER BY id")] == [m[0] for m in MIGRATIONS]
        assert sorted(map(tuple, after_db.execute("SELECT * FROM scans"))) == before["scans"]
        assert sorted(map(tuple, after_db.execute("SELECT * FROM detections"))) == before["detections"]
        assert sorted(map(tuple, after_db.execute("SELECT * FROM changes"))) == before["changes"]
        assert list(after_db.execute("PRAGMA foreign_key_check")) == []
        assert {r[0] for r in after_db.execute("SELECT domain FROM domains")} == {"a.test", "orphan.test", "lost.test"}
        techs = {r["name"]: r for r in after_db.query("SELECT * FROM technologies")}
        assert (techs["PressCMS"]["in_library"], techs["PressCMS"]["website"]) == (1, "https://p.test")
        assert (techs["Gone From Library"]["in_library"], techs["Gone From Library"]["categories"]) == (
            0, '["Analytics"]')
        now_indexes = {r[0] for r in after_db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        replaced = {"detections_technology_status", "idx_detections_technology"}  # by a covering index
        assert indexes - replaced <= now_indexes and not replaced & now_indexes
        assert "detections_technology_status_seen" in now_indexes
        assert {r[0] for r in after_db.execute("SELECT name FROM sqlite_master WHERE type = 'view'")} == views
        summary = {r["domain"]: r["technologies"] for r in after_db.query("SELECT * FROM domain_summary")}
        assert summary["a.test"] == 2
        plan = " ".join(r[3] for r in after_db.execute(
            "EXPLAIN QUERY PLAN SELECT domain FROM detections WHERE technology = 'PressCMS' AND status = 'active'"))
        assert "USING COVERING INDEX detections_technology_status_seen" in plan
        # and the writer goes on as before on the migrated file
        store.record_scans([scan("a.test", "PressCMS", at="2026-11-02T10:00:00Z")])
        assert after_db.execute("SELECT count(*) FROM scans").fetchone()[0] == 4
        assert after_db.execute("SELECT max(id), min(later_note) FROM scans").fetchone() == (13, "kept")
        assert [r[0] for r in after_db.execute("SELECT scan_id FROM scan_log")] == [13]  # the trigger too
