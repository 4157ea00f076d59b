"""Storage: schema and migrations, scans recorded, first_seen surviving every later scan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import sqlite_utils

from detector.cli.options import format_summary
from detector.engine.signatures import load_signatures
from detector.engine.verdict import SiteDetection
from detector.store.scans import (
    ScanResult,
    StorageError,
    detections_for,
    mirror_library,
    record_scans,
    run_summary,
)
from detector.store.schema import MIGRATIONS, migrate
from detector.store.store import open_database


def scan(domain: str, run: str, at: str, *techs: tuple[str, str | None, int], status: str = "ok",
         kind: str | None = None) -> ScanResult:
    return ScanResult(
        domain=domain, run_id=run, started_at=at, finished_at=at, status=status, error_kind=kind,
        http_status=200 if status == "ok" else None, final_url=f"https://{domain}/", pages=1,
        signatures_version="abc123",
        detections=tuple(
            SiteDetection(t, v, c, ("CMS",), ({"page": f"https://{domain}/", "source": "meta"},)) for t, v, c in techs
        ),
    )


def test_schema_and_migrations(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    assert set(db.table_names()) >= {"_migrations", "domains", "scans", "detections", "technologies", "categories"}
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r["id"] for r in db["_migrations"].rows] == [n for n, _, _ in MIGRATIONS]
    assert migrate(db) == []  # idempotent
    assert db["detections"].pks == ["domain", "technology"]
    assert set(db["scans"].columns_dict) >= {
        "id", "run_id", "domain", "started_at", "finished_at", "status", "error_kind", "error_message",
        "http_status", "final_url", "offsite", "pages", "signatures_version"}
    assert set(db["domains"].columns_dict) == {"domain", "added_at", "last_scanned_at", "last_status", "last_ok_at"}
    db.close()
    # Reopening applies nothing new and keeps data.
    db = open_database(tmp_path / "x.db")
    assert migrate(db) == []


def test_a_later_migration_is_applied_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_database(tmp_path / "x.db").close()

    def add_notes(db: sqlite_utils.Database) -> None:
        db["notes"].create({"id": int, "domain": str}, pk="id")

    monkeypatch.setattr("detector.store.schema.MIGRATIONS", [*MIGRATIONS, (99, "notes table", add_notes)])
    db = open_database(tmp_path / "x.db")
    assert "notes" in db.table_names()
    assert migrate(db) == []


def test_first_seen_survives_later_scans(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    record_scans(db, [scan("acme.test", "r1", "2026-01-01T00:00:00Z", ("WordPress", "6.3", 50))])
    record_scans(db, [scan("acme.test", "r2", "2026-02-01T00:00:00Z", ("WordPress", "6.4", 100), ("PHP", None, 100))])
    rows = {r["technology"]: r for r in detections_for(db, "acme.test")}
    assert rows["WordPress"]["first_seen"] == "2026-01-01T00:00:00Z"
    assert rows["WordPress"]["last_seen"] == "2026-02-01T00:00:00Z"
    assert (rows["WordPress"]["version"], rows["WordPress"]["confidence"]) == ("6.4", 100)
    assert rows["PHP"]["first_seen"] == "2026-02-01T00:00:00Z"
    assert rows["WordPress"]["categories"] == ["CMS"]
    assert rows["WordPress"]["evidence"] == [{"page": "https://acme.test/", "source": "meta"}]
    assert rows["WordPress"]["status"] == "active"


def test_domains_table_tracks_last_scan_and_last_ok(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    record_scans(db, [scan("acme.test", "r1", "2026-01-01T00:00:00Z")])
    record_scans(db, [scan("acme.test", "r2", "2026-02-01T00:00:00Z", status="error", kind="timeout")])
    row = db["domains"].get("acme.test")
    assert row == {"domain": "acme.test", "added_at": "2026-01-01T00:00:00Z",
                   "last_scanned_at": "2026-02-01T00:00:00Z", "last_status": "error",
                   "last_ok_at": "2026-01-01T00:00:00Z"}
    assert db["scans"].count == 2


def test_run_summary(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    record_scans(db, [
        dataclasses.replace(scan("a.test", "r1", "2026-01-01T00:00:00Z", ("WordPress", "6.4", 100), ("PHP", None, 100)),
                            render="rendered", render_note="WordPress: version in js rules"),
        dataclasses.replace(scan("b.test", "r1", "2026-01-01T00:00:00Z", ("WordPress", None, 100)),
                            render="skipped", render_note="over the render budget"),
        scan("c.test", "r1", "2026-01-01T00:00:00Z", status="error", kind="dns"),
        dataclasses.replace(scan("d.test", "r0", "2025-01-01T00:00:00Z", ("Drupal", None, 100)), render="rendered"),
    ])
    s = run_summary(db, "r1")
    assert s == {
        "run_id": "r1", "domains_ok": 2, "domains_failed": 1, "failed_by_kind": {"dns": 1}, "pages": 3,
        "technologies": 2,
        "top_technologies": [{"technology": "WordPress", "domains": 2}, {"technology": "PHP", "domains": 1}],
        "render": {"rendered": 1, "skipped": 1},  # this run's scans only
    }
    assert "Rendered in Chromium: 1 rendered; 1 left static over the render budget" in format_summary(
        {**s, "invalid_lines": 0, "database": "x.db"})


def test_library_mirror(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    library = load_signatures(None)
    mirror_library(db, library)
    mirror_library(db, library)  # a second run replaces, never duplicates
    assert db["technologies"].count == len(library.signatures)
    assert db["categories"].count == len(library.categories)
    wp = db["technologies"].get("WordPress")
    assert "CMS" in json.loads(wp["categories"])
    assert "Content" in json.loads(wp["groups"])
    assert wp["website"] == "https://wordpress.org"
    cms = next(db.query("select * from categories where name = 'CMS'"))
    assert json.loads(cms["groups"]) == ["Content"]


@pytest.mark.parametrize("kind", ["missing-folder", "folder", "not-sqlite"])
def test_unusable_database_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    if kind == "missing-folder":
        path, match = tmp_path / "nope" / "x.db", "does not exist"
    elif kind == "folder":
        path, match = tmp_path, "is a folder"
    else:
        path, match = tmp_path / "x.db", "cannot open or write"
        path.write_text("this is not a database " * 100)
    with pytest.raises(StorageError, match=match):
        open_database(path)


def test_layers_import_only_what_they_need() -> None:
    """Storage, segmentation and the engine workers never pull Scrapy or Twisted in."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import detector.store.store, detector.store.accounts, detector.segment.runner, detector.crawl\n"
        "assert 'scrapy' not in sys.modules and 'twisted' not in sys.modules, 'storage'\n"
        "import detector.crawl.worker, detector.inputs, detector.engine.verdict\n"
        "assert 'scrapy' not in sys.modules and 'twisted' not in sys.modules, 'worker'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
