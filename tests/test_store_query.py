"""Querying the store: the views and Datasette's canned queries, on a real SQLite file."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli import cli
from detector.engine.signatures import load_signatures
from detector.engine.verdict import SiteDetection
from detector.store.datasette import metadata
from detector.store.scans import ScanResult
from detector.store.store import Store
from detector.timestamps import format_time
from tests.conftest import TEST_SIGNATURES

NOW = datetime.now(timezone.utc)
RECENT = format_time(NOW - timedelta(days=2))
OLD = format_time(NOW - timedelta(days=60))


def scan(domain: str, at: str, *techs: str, status: str = "ok") -> ScanResult:
    return ScanResult(
        domain=domain, run_id="r-" + at, started_at=at, finished_at=at, status=status,
        error_kind=None if status == "ok" else "timeout", error_message=None if status == "ok" else "no answer",
        pages=1, detections=tuple(SiteDetection(t, None, 100, ("CMS",), ()) for t in techs),
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "q.db")
    s.mirror_library(load_signatures([TEST_SIGNATURES]))
    s.record_scans([scan("old.test", OLD, "PressCMS"), scan("new.test", OLD, "PressCMS", "Shopy")])
    s.record_scans([scan("new.test", RECENT, "PressCMS"), scan("new.test", RECENT, "PressCMS")], miss_threshold=1)
    s.record_scans([scan("down.test", RECENT, status="error")])
    return s


def rows(store: Store, sql: str, params: dict[str, object] | None = None) -> list[dict[str, object]]:
    return list(store.db.query(sql, params or {}))


def test_views(store: Store) -> None:
    techs = {(r["domain"], r["technology"]): r for r in rows(store, "select * from domain_technologies")}
    assert (techs[("old.test", "PressCMS")]["stale"], techs[("new.test", "PressCMS")]["stale"]) == (1, 0)
    assert techs[("new.test", "Shopy")]["status"] == "removed"
    counts = {r["technology"]: r for r in rows(store, "select * from technology_counts")}
    assert (counts["PressCMS"]["active_domains"], counts["Shopy"]["active_domains"]) == (2, 0)
    assert (counts["Shopy"]["removed_30d"], counts["Shopy"]["added_30d"]) == (1, 0)
    assert counts["PressCMS"]["category"] == "CMS"
    assert rows(store, "select * from category_counts") == [
        {"category": "CMS", "technologies": 1, "active_domains": 2}]
    summary = {r["domain"]: r for r in rows(store, "select * from domain_summary")}
    assert (summary["new.test"]["technologies"], summary["down.test"]["last_status"]) == (1, "error")


def test_every_canned_query_runs(store: Store) -> None:
    queries = metadata(store.path)["databases"]["q"]["queries"]
    params = {"technology": "Shopy", "cohort": "integration"}
    results = {}
    for name, q in queries.items():
        names = set(re.findall(r":(\w+)", q["sql"]))
        results[name] = rows(store, q["sql"], {n: params[n] for n in names})
    assert [r["domain"] for r in results["dropped_recently"]] == ["new.test"]
    assert results["who_runs"] == []
    assert [r["domain"] for r in results["stale_accounts"]] == ["down.test", "old.test"]  # never ok first
    assert [(r["domain"], r["error_kind"]) for r in results["failing_domains"]] == [("down.test", "timeout")]


def test_metadata_names_only_what_exists(store: Store) -> None:
    described = set(metadata(store.path)["databases"]["q"]["tables"])
    assert described == set(store.db.table_names()) - {"_migrations"} | set(store.db.view_names())


def test_datasette_metadata_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["datasette-metadata", "--db", str(tmp_path / "accounts.db")])
    assert result.exit_code == 0, result.output
    assert "accounts" in json.loads(result.output)["databases"]


# ---------------------------------------------------------------------------- detector technologies


def technologies(store: Store, *args: str) -> tuple[int, str]:
    store.close()
    res = CliRunner().invoke(cli, ["technologies", "--db", str(store.path), *args])
    return res.exit_code, res.output


def test_technologies_of_a_domain_as_a_table(store: Store) -> None:
    code, out = technologies(store, "new.test", "down.test", "--removed")
    assert code == 0, out
    assert out.splitlines() == [
        "domain     technology          version  status   first_seen  last_seen",
        "down.test  (last scan: error)",
        f"new.test   PressCMS                     active   {OLD[:10]}  {RECENT[:10]}",
        f"new.test   Shopy                        removed  {OLD[:10]}  {OLD[:10]}",
    ]


def test_domains_running_a_technology_in_each_format(store: Store) -> None:
    code, out = technologies(store, "--technology", "presscms", "--format", "line")
    assert (code, out) == (0, "new.test [PressCMS]\nold.test [PressCMS]\n")
    code, out = technologies(store, "--technology", "PressCMS", "--json")
    assert [(d["domain"], [t["name"] for t in d["technologies"]]) for d in json.loads(out)] == [
        ("new.test", ["PressCMS"]), ("old.test", ["PressCMS"])]
    code, nl = technologies(store, "--technology", "PressCMS", "--nl")
    assert [json.loads(x) for x in nl.splitlines()] == json.loads(out)
    code, out = technologies(store, "old.test", "--format", "wappalyzer")
    [record] = [json.loads(x) for x in out.splitlines()]
    assert record["urls"] == {"https://old.test/": {"status": None}}
    assert record["technologies"] == [{
        "slug": "presscms", "name": "PressCMS", "description": None, "confidence": 100, "version": None,
        "icon": None, "website": "https://presscms.example", "cpe": None,
        "categories": [{"id": 1, "slug": "cms", "name": "CMS"}]}]


def test_technologies_of_a_missing_database_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["technologies", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 1 and "no such database" in res.output
    assert not (tmp_path / "none.db").exists()


def test_technologies_names_what_it_does_not_know(store: Store) -> None:
    store.close()
    res = CliRunner().invoke(cli, ["technologies", "--db", str(store.path), "old.test", "nowhere.test"])
    assert res.exit_code == 0
    assert res.stdout.splitlines()[1].split()[:2] == ["old.test", "PressCMS"]
    assert res.stderr == f"note: not in {store.path}: nowhere.test (crawl them first: detector crawl FILE --db {store.path})\n"
    res = CliRunner().invoke(cli, ["technologies", "--db", str(store.path), "--technology", "PresCMS"])
    assert (res.exit_code, res.stdout) == (0, "No domains.\n")
    assert f'no technology is named "PresCMS" in {store.path}' in res.stderr and "PressCMS" in res.stderr
