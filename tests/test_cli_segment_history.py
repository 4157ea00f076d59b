"""Segmentation runs kept: names side by side, refusals that keep the previous result, diffs,
the run list, CRM column names, and a database segmented before the history existed."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from detector.cli.segment import segment
from detector.store import schema
from tests import test_cli_segment as base
from tests.test_cli_segment import AS_OF, run_segment


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The accounts and crawl tables of test_cli_segment's fixture."""
    return base.db_path.__wrapped__(tmp_path)  # type: ignore[attr-defined,no-any-return]


def rules_file(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: str) -> object:
    return CliRunner().invoke(segment, list(args))


def test_a_market_matching_nothing_is_refused_and_names_the_values(db_path: Path, tmp_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    rules = rules_file(tmp_path, "product: {name: X, competitors: [Klaviyo]}\nmarket:\n  country: [USA, UK]\n")
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {rules} line 3: the market test `country in [USA, UK]` matches none of the 7 "
        "accounts; the column `country` holds: US (4), CA (1), FR (1), GB (1); fix the test; "
        "the previous result (run 1 of 2026-11-20) is kept (--force stores it anyway)\n"
    )
    db = sqlite_utils.Database(db_path)
    assert db.execute("select count(*) from segment_runs").fetchone()[0] == 1
    assert db.execute("select count(*) from cohort_members").fetchone()[0] == 20
    forced = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF, "--force"]
    )
    assert forced.exit_code == 0
    assert "warning: stored with --force although no account is in a cohort" in forced.stderr
    assert db.execute("select forced, in_market from segment_runs where id = 2").fetchone() == (1, 0)


def test_a_run_that_would_empty_the_segmentation_is_refused(db_path: Path, tmp_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    rules = rules_file(tmp_path, "product: {name: X, competitors: [HubSpot]}\n")
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF])
    assert result.exit_code == 1
    assert result.output.startswith(
        f'Error: {rules}: this run puts no account in any cohort, but segmentation "default" had '
        "3 accounts in cohorts (run 1)"
    )


def test_named_segmentations_live_side_by_side(db_path: Path, tmp_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    rules = rules_file(tmp_path, "product: {name: X, competitors: [Klaviyo]}\n")
    result = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF, "--name", "q4-email"]
    )
    assert result.exit_code == 0, result.output
    assert 'run 2 of segmentation "q4-email"' in result.stderr
    db = sqlite_utils.Database(db_path)
    by_name = db.execute("select segmentation, count(*) from cohorts group by segmentation order by 1").fetchall()
    assert by_name == [("default", 9), ("q4-email", 2)]
    bad = invoke("--rules", str(rules), "--db", str(db_path), "--name", "q4 email")
    assert bad.exit_code == 1  # type: ignore[attr-defined]
    assert "segmentation name 'q4 email'" in bad.output  # type: ignore[attr-defined]


def test_diff_lists_moves_with_reasons_as_table_csv_and_json(db_path: Path, tmp_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    only = invoke("diff", "--db", str(db_path))
    assert only.exit_code == 1  # type: ignore[attr-defined]
    assert "has one run only (run 1)" in only.output  # type: ignore[attr-defined]
    db = sqlite_utils.Database(db_path)
    db.execute("update detections set status = 'removed', removed_at = '2026-11-19T00:00:00Z' where domain = 'alpha.test' and technology = 'Klaviyo'")
    db.conn.commit()
    assert run_segment(db_path).exit_code == 0
    table = invoke("diff", "--db", str(db_path))
    assert table.exit_code == 0  # type: ignore[attr-defined]
    assert table.stdout.splitlines()[1].split()[:3] == ["alpha.test", "entered", "growing-shops"]  # type: ignore[attr-defined]
    assert table.stderr == '3 changes from run 1 (2026-11-20) to run 2 (2026-11-20) of segmentation "default"\n'  # type: ignore[attr-defined]
    rows = list(csv.DictReader(invoke("diff", "--db", str(db_path), "--csv").stdout.splitlines()))  # type: ignore[attr-defined]
    assert [(r["domain"], r["change"], r["cohort"], r["before"], r["after"]) for r in rows] == [
        ("alpha.test", "entered", "growing-shops", "displacement", "growing-shops"),
        ("alpha.test", "entered", "whitespace", "displacement", "growing-shops"),
        ("alpha.test", "left", "displacement", "displacement", "growing-shops"),
    ]
    assert rows[2]["reason"] == "no longer: runs Klaviyo, last seen 2026-11-18"
    payload = json.loads(invoke("diff", "--db", str(db_path), "--json", "--since", "1").stdout)  # type: ignore[attr-defined]
    assert (payload["from"]["run"], payload["to"]["run"], len(payload["moves"])) == (1, 2, 3)
    missing = invoke("diff", "--db", str(db_path), "--since", "2026-01-01")
    assert missing.exit_code == 1  # type: ignore[attr-defined]
    assert "has no run on or before 2026-01-01; its runs are: 1 (2026-11-20)" in missing.output  # type: ignore[attr-defined]
    listing = json.loads(invoke("runs", "--db", str(db_path), "--json").stdout)  # type: ignore[attr-defined]
    assert [(r["run"], r["in_market"], r["in_cohort"]) for r in listing] == [(1, 6, 3), (2, 6, 3)]


def test_export_in_a_crm_format(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "hubspot.csv"
    assert run_segment(db_path, "--export", str(out), "--format", "hubspot").exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[0] == "Company Domain Name"
    assert "detector_primary_cohort" in header and "detector_score_breakdown" in header
    assert "company_name" in header  # the account's own columns keep their names


def test_a_database_segmented_before_history_keeps_its_cohorts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("create table _migrations (id integer primary key, name text, applied_at text)")
    conn.commit()
    conn.close()
    db = sqlite_utils.Database(path)
    for number, name, func in schema.MIGRATIONS:
        if number < 6:
            func(db)
            db.execute("insert into _migrations values (?, ?, 'then')", [number, name])
    db.execute("insert into cohorts values ('displacement', 'displacement', '', 0, 1, 0, 'r.yaml', 'T')")
    db.execute("insert into cohort_members values ('displacement', 'a.test', 1, 40, 0, 'runs Klaviyo', '[]', '[]', 'T')")
    db.conn.commit()
    db.close()
    from detector.store.store import open_database

    migrated = open_database(path)
    assert migrated.execute("select segmentation, cohort, domain, run_id from cohort_members").fetchall() == [
        ("default", "displacement", "a.test", None)
    ]
    assert migrated.execute("select count(*) from domain_summary").fetchone()[0] == 0


@pytest.mark.parametrize("args", [["segment"], ["segment", "diff"], ["segment", "runs"]], ids=" ".join)
def test_help_has_an_example_and_readme_documents_every_option(args: list[str]) -> None:
    import re

    from detector.cli.main import cli

    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    text = (base.ROOT / "README.md").read_text(encoding="utf-8")
    assert f"detector {' '.join(args)} " in text
    for option in set(re.findall(r"(--[a-z][a-z-]+)", result.output)) - {"--help"}:
        assert option in text, f"README does not mention {' '.join(args)} option {option}"


def test_pages_seen_and_confidence_are_read_from_the_store(db_path: Path, tmp_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    evidence = [{"page": "https://alpha.test/", "source": "script_src"}, {"page": "https://alpha.test/cart"}]
    db.execute(
        "update detections set evidence = ?, confidence = 80 where domain = 'alpha.test' and technology = 'Shopify'",
        [json.dumps(evidence)],
    )
    db.execute("update detections set confidence = 50 where domain = 'gamma.test' and technology = 'Shopify'")
    db.conn.commit()
    rules = rules_file(
        tmp_path,
        "cohorts:\n  - name: sure\n    all: [{technology: Shopify, pages_seen: {at_least: 2}}]\n"
        "  - name: confident\n    all: [{technology: Shopify, min_confidence: 75}]\n",
    )
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF, "--export", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = {r["domain"]: r for r in json.loads(out.read_text())}
    assert rows["alpha.test"]["reasons"]["sure"] == "runs Shopify, last seen 2026-11-18, on 2 pages"
    assert rows["alpha.test"]["cohorts"] == ["sure", "confident"]
    assert rows["gamma.test"]["cohorts"] == []  # one page, confidence 50
    assert rows["gamma.test"]["primary_cohort"] == "none"
