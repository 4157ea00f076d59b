"""`detector accounts import` and `detector segment` through click's CliRunner, on real SQLite files."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from detector.cli.segment import accounts, segment
from detector.segment.assign import Assignment, Membership
from detector.segment.rules import Vocabulary, parse_rules
from detector.store.cohorts import write_segmentation
from detector.store.store import open_database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_RULES = ROOT / "examples" / "rules.yaml"
AS_OF = "2026-11-20T12:00:00Z"
FRESH = "2026-11-18T08:00:00Z"
OLD = "2026-05-01T08:00:00Z"

ACCOUNTS_CSV = """\
Company Name,Website,Industry,Employees,Country,Owner,Zip
Alpha Shop,https://www.alpha.test/,Retail,300,US,ana,02139
Beta Store,beta.test,Apparel,"1,200",GB,bo,
Gamma Goods,gamma.test,Retail,40,US,ana,
Delta Deals,http://delta.test,Retail,90,US,cy,
Echo Outlet,echo.test,Retail,60,CA,cy,
Foxtrot Mode,foxtrot.test,Apparel,500,FR,bo,
Golf Garden,golf.test,Garden,25,US,ana,
"""

CATEGORIES = {
    "Shopify": ["Ecommerce"],
    "WooCommerce": ["Ecommerce", "WordPress plugins"],
    "Klaviyo": ["Marketing automation"],
    "Google Analytics": ["Analytics"],
    "Google Tag Manager": ["Tag managers"],
    "Optimizely": ["A/B Testing", "Personalisation"],
    "Judge.me": ["Reviews"],
}


def crawl_tables(
    db: sqlite_utils.Database,
    scans: dict[str, tuple[str | None, str]],
    found: dict[str, list[tuple[str, str]]],
) -> None:
    """Rows shaped like the crawl's `domains` and `detections` tables."""
    db["domains"].insert_all(  # type: ignore[union-attr]
        (
            {
                "domain": d,
                "added_at": OLD,
                "last_scanned_at": ok or OLD,
                "last_status": status,
                "last_ok_at": ok,
            }
            for d, (ok, status) in scans.items()
        ),
        pk="domain",
    )
    db["scans"].insert_all(  # type: ignore[union-attr]
        (
            {
                "run_id": "r1",
                "domain": d,
                "started_at": OLD,
                "finished_at": OLD,
                "status": "error",
                "error_kind": "timeout",
            }
            for d, (ok, status) in scans.items()
            if status == "error"
        ),
    )
    rows = []
    for domain, techs in found.items():
        for tech, last_seen in techs:
            rows.append(
                {
                    "domain": domain,
                    "technology": tech,
                    "version": None,
                    "confidence": 100,
                    "categories": json.dumps(CATEGORIES[tech]),
                    "first_seen": OLD,
                    "last_seen": last_seen,
                    "evidence": "[]",
                    "status": "active",
                    "removed_at": None,
                }
            )
    # Detections name their technology (a foreign key), as the crawl's library mirror provides.
    db["technologies"].insert_all(  # type: ignore[union-attr]
        ({"name": t, "categories": json.dumps(c)} for t, c in CATEGORIES.items()), ignore=True)
    db["detections"].insert_all(rows)  # type: ignore[union-attr]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "detector.db"
    db = open_database(path)
    crawl_tables(
        db,
        scans={
            "alpha.test": (FRESH, "ok"),
            "beta.test": (FRESH, "ok"),
            "gamma.test": (FRESH, "ok"),
            "delta.test": (OLD, "ok"),
            "echo.test": (None, "error"),
            "foxtrot.test": (FRESH, "ok"),
        },
        found={
            "alpha.test": [
                ("Shopify", FRESH),
                ("Klaviyo", FRESH),
                ("Google Analytics", FRESH),
                ("Google Tag Manager", FRESH),
                ("Optimizely", FRESH),
            ],
            "beta.test": [("WooCommerce", FRESH), ("Judge.me", FRESH)],
            "gamma.test": [("Shopify", FRESH)],
            "delta.test": [("Shopify", OLD), ("Google Analytics", OLD)],
            "foxtrot.test": [("Shopify", FRESH)],
        },
    )
    db.close()
    csv_path = tmp_path / "accounts.csv"
    csv_path.write_text(ACCOUNTS_CSV)
    result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


def run_segment(db_path: Path, *extra: str) -> Any:
    args = ["--rules", str(EXAMPLE_RULES), "--db", str(db_path), "--as-of", AS_OF, *extra]
    return CliRunner().invoke(segment, args)


def test_accounts_import_normalises_domains_and_keeps_numbers(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    csv_path = tmp_path / "accounts.csv"
    csv_path.write_text(ACCOUNTS_CSV)
    result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(path)])
    assert result.exit_code == 0
    assert result.output == f"imported 7 accounts from {csv_path} (7 new, 0 updated)\n"
    db = sqlite_utils.Database(path)
    rows = {r["domain"]: r for r in db["accounts"].rows}
    assert sorted(rows) == [
        "alpha.test",
        "beta.test",
        "delta.test",
        "echo.test",
        "foxtrot.test",
        "gamma.test",
        "golf.test",
    ]
    alpha = rows["alpha.test"]
    assert alpha["company_name"] == "Alpha Shop"
    assert alpha["website"] == "https://www.alpha.test/"
    assert alpha["employees"] == 300
    assert rows["beta.test"]["employees"] == 1200
    assert alpha["zip"] == "02139"
    assert db["accounts"].columns_dict["employees"] is int


def test_accounts_reimport_updates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    first = tmp_path / "a.csv"
    first.write_text("domain,employees,owner\nalpha.test,10,ana\nbeta.test,20,bo\n")
    second = tmp_path / "b.csv"
    second.write_text("website,employees,region\nhttps://alpha.test,15,EMEA\ngamma.test,30,APAC\n")
    runner = CliRunner()
    assert runner.invoke(accounts, ["import", str(first), "--db", str(path)]).exit_code == 0
    result = runner.invoke(accounts, ["import", str(second), "--db", str(path)])
    assert result.output == f"imported 2 accounts from {second} (1 new, 1 updated)\n"
    rows = {r["domain"]: r for r in sqlite_utils.Database(path)["accounts"].rows}
    assert (
        rows["alpha.test"]["employees"],
        rows["alpha.test"]["owner"],
        rows["alpha.test"]["region"],
    ) == (
        15,
        "ana",
        "EMEA",
    )
    assert rows["beta.test"]["employees"] == 20
    assert rows["gamma.test"]["region"] == "APAC"


def test_accounts_import_reports_blank_and_duplicate_rows(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("name,url\nA,alpha.test\nB,\nA again,https://www.alpha.test/shop\n")
    result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"imported 1 account from {csv_path} (1 new, 0 updated)\n"
    assert result.stderr == (
        "note: skipped 1 rows with an empty url column\n"
        "note: merged 1 row whose domain appeared earlier in the file (rows merge in file "
        "order: a later non-blank cell wins, a blank one keeps the earlier value):\n"
        f"  {csv_path} line 4 repeats alpha.test (first on line 2): name: 'A' -> 'A again'; "
        "url: 'alpha.test' -> 'https://www.alpha.test/shop'\n"
    )
    assert [r["name"] for r in sqlite_utils.Database(path)["accounts"].rows] == ["A again"]


def test_accounts_import_names_each_duplicate_and_what_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    csv_path = tmp_path / "a.csv"
    csv_path.write_text(
        "domain,employees,country\nalpha.test,120,US\nbeta.test,5,GB\nalpha.test,150,\nbeta.test,5,GB\n"
    )
    result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(path)])
    assert result.exit_code == 0
    assert result.stderr.splitlines()[1:] == [
        f"  {csv_path} line 4 repeats alpha.test (first on line 2): employees: 120 -> 150",
        f"  {csv_path} line 5 repeats beta.test (first on line 3): no value changed",
    ]
    rows = {r["domain"]: r for r in sqlite_utils.Database(path)["accounts"].rows}
    assert (rows["alpha.test"]["employees"], rows["alpha.test"]["country"]) == (150, "US")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name,country\nA,US\n",
            (
                "Error: {path} line 1: no domain or website column among name, country; name one column `domain` or "
                "`website`, or pass --column\n"
            ),
        ),
        (
            "domain,name\nalpha.test,A\nexa mple.com,B\nbad,C\n",
            (
                'Error: {path} line 3: "exa mple.com" is not a domain name (it contains a space). '
                'Fix or delete the line\n{path} line 4: "bad" has no public suffix (like .com or .co.uk). '
                "Fix or delete the line\nNothing was imported.\n"
            ),
        ),
        (
            "domain,Name,NAME\nalpha.test,A,B\n",
            'Error: {path} line 1: columns "Name" and "NAME" both become `name`; rename one\n',
        ),
    ],
    ids=["no-domain-column", "bad-domains", "clashing-columns"],
)
def test_accounts_import_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "detector.db"
    csv_path = tmp_path / "a.csv"
    csv_path.write_text(text)
    result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(path)])
    assert result.exit_code == 1
    assert result.output == message.format(path=csv_path)
    assert sqlite_utils.Database(path).execute("select count(*) from accounts").fetchone()[0] == 0


def test_segment_prints_sizes_by_tier(db_path: Path) -> None:
    result = CliRunner().invoke(
        segment, ["--rules", str(EXAMPLE_RULES), "--db", str(db_path), "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    # Each cell counts accounts; `primary` counts each account once (by the rules' priority).
    assert result.stdout == (
        "cohort             tier 1  tier 2  tier 3  no tier  stale  total  primary\n"
        "integration             2       1       0        0      1      4        0\n"
        "displacement            1       0       0        0      0      1        1\n"
        "complement              2       0       0        0      1      3        0\n"
        "whitespace              1       1       0        0      1      3        0\n"
        "growing-shops           1       1       0        0      1      3        2\n"
        "maturity-basic          1       1       0        0      1      3        0\n"
        "maturity-measured       0       0       0        0      0      0        0\n"
        "maturity-advanced       1       0       0        0      0      1        0\n"
        "unknown                 0       0       0        2      0      2        2\n"
        "\n"
        "funnel                                   accounts\n"
        "accounts                                        7\n"
        "market: country in [US, GB, CA, AU, DE]         6\n"
        "market: employees between 5 and 5000            6\n"
        "scanned successfully                            4\n"
        "scanned within 90 days                          3\n"
        "in a cohort (maturity levels aside)             3\n"
        "tiered                                          3\n"
        "\n"
        "overlap        integration  displacement  complement  whitespace  growing-shops\n"
        "integration              3             1           2           2              2\n"
        "displacement             1             1           1           0              0\n"
        "complement               2             1           2           1              1\n"
        "whitespace               2             0           1           2              2\n"
        "growing-shops            2             0           1           2              2\n"
    )
    assert result.stderr == (
        'segmented 6 accounts (1 outside the market filters) into 20 memberships: run 1 of segmentation "default"\n'
        "warning: 1 account last scanned successfully more than 90 days ago: its memberships "
        "are flagged stale and score nothing; re-crawl\n"
        'warning: 2 accounts never scanned successfully: in "unknown", not in any cohort; crawl again\n'
        'warning: cohort "maturity-measured" is empty; check its rule or drop it\n'
        "warning: whitespace is not scoped: every account without a Marketing automation tool "
        "counts, whatever it is (a school, a dental office); add a technology test to `market`, "
        "e.g. `category: Ecommerce`, so whitespace is computed inside your universe\n"
    )


def test_segment_writes_reasons_and_evidence(db_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    db = sqlite_utils.Database(db_path)
    members = {(r["cohort"], r["domain"]): r for r in db["cohort_members"].rows}
    alpha = members[("displacement", "alpha.test")]
    assert alpha["reason"] == "runs Klaviyo, last seen 2026-11-18"
    assert json.loads(alpha["technologies"]) == ["Klaviyo"]
    assert json.loads(alpha["evidence"]) == [
        {"technology": "Klaviyo", "version": None, "first_seen": OLD, "last_seen": FRESH}
    ]
    assert (alpha["tier"], alpha["stale"], alpha["computed_at"]) == (1, 0, "2026-11-20T12:00:00Z")
    delta = members[("integration", "delta.test")]
    assert delta["stale"] == 1
    assert delta["reason"] == (
        "runs Shopify, last seen 2026-05-01 (stale: older than 90 days, so not counted) "
        "(stale: last successful scan 2026-05-01, older than 90 days; re-crawl)"
    )
    assert members[("unknown", "echo.test")]["reason"] == (
        "never scanned successfully (last scan failed: timeout); not counted as whitespace"
    )
    assert (
        members[("unknown", "golf.test")]["reason"]
        == "never scanned: crawl it to learn its technologies"
    )
    assert ("whitespace", "echo.test") not in members
    assert not any(domain == "foxtrot.test" for _, domain in members)
    cohorts = {r["name"]: r for r in db["cohorts"].rows}
    assert (cohorts["integration"]["members"], cohorts["integration"]["stale_members"]) == (4, 1)
    assert cohorts["unknown"]["kind"] == "unknown"


def test_segment_replaces_the_previous_result(db_path: Path, tmp_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text("product:\n  name: X\n  competitors: [Klaviyo]\n")
    result = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(db_path), "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    db = sqlite_utils.Database(db_path)
    assert [r["name"] for r in db["cohorts"].rows] == ["displacement", "unknown"]
    assert sorted((r["cohort"], r["domain"]) for r in db["cohort_members"].rows) == [
        ("displacement", "alpha.test"),
        ("unknown", "echo.test"),
        ("unknown", "golf.test"),
    ]


def test_segment_keeps_the_previous_result_when_rules_are_bad(
    db_path: Path, tmp_path: Path
) -> None:
    assert run_segment(db_path).exit_code == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text("product:\n  name: X\n  competitors: [Klavyo]\n")
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(db_path)])
    assert result.exit_code == 1
    assert (
        result.output
        == f'Error: {rules} line 3: unknown technology "Klavyo"; did you mean "Klaviyo"?\n'
    )
    db = sqlite_utils.Database(db_path)
    assert db.execute("select count(*) from cohort_members").fetchone()[0] == 20


def test_segment_exports_csv(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cohorts.csv"
    result = run_segment(db_path, "--export", str(out))
    assert result.exit_code == 0
    with out.open(newline="") as fh:
        rows = {r["domain"]: r for r in csv.DictReader(fh)}
    # Every account, the one outside the market (foxtrot, in FR) too, with explicit values.
    assert sorted(rows) == [
        "alpha.test",
        "beta.test",
        "delta.test",
        "echo.test",
        "foxtrot.test",
        "gamma.test",
        "golf.test",
    ]
    foxtrot = rows["foxtrot.test"]
    assert (foxtrot["primary_cohort"], foxtrot["cohorts"], foxtrot["tier"]) == ("out-of-market", "", "")
    alpha = rows["alpha.test"]
    assert alpha["company_name"] == "Alpha Shop"
    assert alpha["owner"] == "ana"
    assert alpha["cohorts"] == "integration;displacement;complement;maturity-advanced"
    assert alpha["tier"] == "1"
    assert alpha["score"] == "130.0"
    assert alpha["primary_cohort"] == "displacement"
    assert alpha["score_breakdown"] == (
        "integration: +30 | displacement: +40 | complement: +10 | maturity-advanced: +20 | "
        "employees between 50 and 1000: +20 | industry in [Retail, Apparel, Beauty]: +10"
    )
    assert alpha["first_seen"].startswith("Shopify: 2026-05-01 | Klaviyo: 2026-05-01")
    assert alpha["technologies"] == "Shopify;Klaviyo;Google Analytics;Google Tag Manager;Optimizely"
    assert alpha["reasons"].startswith(
        "integration: runs Shopify, last seen 2026-11-18 | displacement: runs Klaviyo"
    )
    delta = rows["delta.test"]
    assert delta["cohorts"] == ""
    assert (
        delta["stale_cohorts"] == "integration;complement;whitespace;growing-shops;maturity-basic"
    )
    # Its last scan is too old: firmographics alone (30 points) must not tier it.
    assert (delta["tier"], delta["score"], delta["primary_cohort"]) == ("", "30.0", "stale")
    assert rows["echo.test"]["cohorts"] == "unknown"
    assert rows["echo.test"]["primary_cohort"] == "unknown"


def test_segment_exports_json(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cohorts.json"
    assert run_segment(db_path, "--export", str(out)).exit_code == 0
    rows = {r["domain"]: r for r in json.loads(out.read_text())}
    assert rows["gamma.test"]["cohorts"] == [
        "integration",
        "whitespace",
        "growing-shops",
        "maturity-basic",
    ]
    assert rows["gamma.test"]["employees"] == 40
    assert rows["gamma.test"]["reasons"]["whitespace"] == (
        "runs no Marketing automation technology or Klaviyo or MailChimp or Omnisend (scanned 2026-11-18)"
    )
    assert rows["gamma.test"]["tier"] == 2


def test_segment_without_accounts_uses_crawled_domains(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    crawl_tables(
        open_database(path),
        {"alpha.test": (FRESH, "ok")},
        {"alpha.test": [("Klaviyo", FRESH)]},
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text("product:\n  name: X\n  competitors: [Klaviyo]\n")
    result = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(path), "--as-of", AS_OF]
    )
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "cohort        members  stale  total  primary\n"
        "displacement        1      0      1        1\n"
        "unknown             0      0      0        0\n"
        "\n"
        "funnel                               accounts\n"
        "accounts                                    1\n"
        "scanned successfully                        1\n"
        "in a cohort (maturity levels aside)         1\n"
    )
    assert result.stderr == (
        "note: no accounts imported; segmenting 1 crawled domain without firmographics\n"
        'segmented 1 account (0 outside the market filters) into 1 membership: run 1 of segmentation "default"\n'
        'warning: cohort "displacement" holds 100% of the market (1 of 1 account): too broad '
        "for one message; split it or narrow its rule\n"
        "warning: 1 usable cohort (with members, maturity levels aside); fewer than 3 leaves "
        "little to choose from: add cohorts or widen their rules\n"
    )


def test_segment_on_an_empty_database_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    open_database(path)
    result = run_segment(path)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: no accounts to segment; run `detector accounts import FILE.csv` or `detector crawl` first\n"
    )


def test_segment_rejects_a_bad_as_of(db_path: Path) -> None:
    result = CliRunner().invoke(
        segment, ["--rules", str(EXAMPLE_RULES), "--db", str(db_path), "--as-of", "soon"]
    )
    assert result.exit_code == 2
    assert "'soon' is not an ISO date; write e.g. 2026-11-20" in result.output


@pytest.mark.parametrize("command", [accounts, segment], ids=["accounts", "segment"])
def test_help_has_an_example(command: Any) -> None:
    args = ["import", "--help"] if command is accounts else ["--help"]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_segment_names_a_misspelt_account_column(db_path: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("product:\n  name: X\n  competitors: [Klaviyo]\nmarket:\n  contry: [US]\n")
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(db_path)])
    assert result.exit_code == 1
    assert (
        result.output
        == f'Error: {rules} line 5: no account column "contry"; did you mean "country"?\n'
    )


def test_segment_firmographics_need_imported_accounts(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    crawl_tables(open_database(path), {"alpha.test": (FRESH, "ok")}, {})
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "product:\n  name: X\n  competitors: [Klaviyo]\ntiers:\n  firmographics:\n"
        "    - {points: 5, employees: {at_least: 10}}\n  thresholds: {1: 5}\n"
    )
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {rules} line 6: the rules test the account column `employees`, but no accounts "
        "were imported; run `detector accounts import FILE.csv` first\n"
    )


def test_export_keeps_an_account_column_named_like_an_export_column(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    crawl_tables(
        open_database(path),
        {"alpha.test": (FRESH, "ok")},
        {"alpha.test": [("Klaviyo", FRESH)]},
    )
    accounts_csv = tmp_path / "a.csv"
    accounts_csv.write_text("domain,tier\nalpha.test,A\n")
    assert (
        CliRunner().invoke(accounts, ["import", str(accounts_csv), "--db", str(path)]).exit_code
        == 0
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "product:\n  name: X\n  competitors: [Klaviyo]\ntiers:\n  points: {displacement: 10}\n  thresholds: {1: 10}\n"
    )
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        segment, ["--rules", str(rules), "--db", str(path), "--as-of", AS_OF, "--export", str(out)]
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(out.read_text())
    assert (row["account_tier"], row["tier"]) == ("A", 1)


def test_segment_without_a_database_creates_none(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    result = run_segment(path)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: no such database; run `detector accounts import FILE.csv` and "
        "`detector crawl` first, or pass --db\n"
    )
    assert not path.exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [("cohorts.xlsx", "write FILE.csv or FILE.json"), ("missing/cohorts.csv", "does not exist")],
    ids=["extension", "folder"],
)
def test_segment_checks_the_export_path_first(
    db_path: Path, tmp_path: Path, name: str, problem: str
) -> None:
    result = run_segment(db_path, "--export", str(tmp_path / name))
    assert result.exit_code == 2
    assert problem in result.output
    assert (
        sqlite_utils.Database(db_path).execute("select count(*) from cohort_members").fetchone()[0]
        == 0
    )


def test_segment_json_sizes(db_path: Path) -> None:
    result = run_segment(db_path, "--json")
    assert result.exit_code == 0
    sizes = {row["cohort"]: row for row in json.loads(result.stdout)["sizes"]}
    assert sizes["integration"] == {
        "cohort": "integration",
        "tier_1": 2,
        "tier_2": 1,
        "tier_3": 0,
        "no_tier": 0,
        "stale": 1,
        "total": 4,
        "primary": 0,
    }
    assert list(sizes)[-1] == "unknown"
    report = json.loads(result.stdout)
    assert report["funnel"][0] == {"step": "accounts", "accounts": 7}
    assert report["funnel"][-1] == {"step": "tiered", "accounts": 3}
    assert report["overlap"]["integration"]["whitespace"] == 2
    assert (report["run"], report["segmentation"], report["in_market"]) == (1, "default", 6)
    assert any("whitespace is not scoped" in w for w in report["warnings"])


def test_a_failed_write_keeps_the_previous_result(db_path: Path) -> None:
    assert run_segment(db_path).exit_code == 0
    db = open_database(db_path)
    before = db.execute("select * from cohort_members order by cohort, domain").fetchall()

    def assignments() -> Iterator[Assignment]:
        yield Assignment(
            "alpha.test", (Membership("integration", "alpha.test", "new reason"),), 1.0, 3
        )
        raise RuntimeError("disk full")

    rules = parse_rules(
        "product:\n  name: X\n  integrates_with: [Shopify]\n",
        Vocabulary({"Shopify": ("Ecommerce",)}, ("Ecommerce",)),
    )
    with pytest.raises(RuntimeError):
        write_segmentation(db, rules, assignments(), "2026-11-21T00:00:00Z")
    after = db.execute("select * from cohort_members order by cohort, domain").fetchall()
    assert after == before


def test_accounts_import_reads_stdin(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    result = CliRunner().invoke(
        accounts,
        ["import", "-", "--db", str(path)],
        input="website,employees\nhttps://blog.alpha.test/x,7\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "imported 1 account from <stdin> (1 new, 0 updated)\n"
    result = CliRunner().invoke(
        accounts,
        ["import", "-", "--db", str(path), "--keep-subdomains"],
        input="website,employees\nhttps://blog.alpha.test/x,8\n",
    )
    assert result.exit_code == 0, result.output
    rows = {r["domain"]: r["employees"] for r in sqlite_utils.Database(path)["accounts"].rows}
    assert rows == {"alpha.test": 7, "blog.alpha.test": 8}


def test_accounts_import_keeps_columns_named_like_ours(tmp_path: Path) -> None:
    path = tmp_path / "detector.db"
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("website,domain,imported_at\nalpha.test,Alpha Inc,2020-01-01\n")
    args = ["import", str(csv_path), "--db", str(path), "--domain-column", "website"]
    result = CliRunner().invoke(accounts, args)
    assert result.exit_code == 0, result.output
    [row] = sqlite_utils.Database(path)["accounts"].rows
    assert (row["domain"], row["domain_original"], row["imported_at_original"]) == (
        "alpha.test",
        "Alpha Inc",
        "2020-01-01",
    )
    assert row["imported_at"] != "2020-01-01"


def test_segment_names_a_misspelt_keyword(db_path: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("cohorts:\n  - name: shops\n    all:\n      - technolgy: Shopify\n")
    result = CliRunner().invoke(segment, ["--rules", str(rules), "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output == (
        f'Error: {rules} line 4: no account column "technolgy"; did you mean the keyword "technology"?\n'
    )


@pytest.mark.parametrize("spelling", ["--column", "--domain-column"])
def test_accounts_import_takes_crawls_column_option(tmp_path: Path, spelling: str) -> None:
    """`--column` as in `crawl`, by name or number; `--domain-column` still works."""
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("name,homepage,web\nAcme,https://www.acme.test/,x\n")
    for value in ("web", "2"):
        db = tmp_path / f"{value}.db"
        result = CliRunner().invoke(accounts, ["import", str(csv_path), "--db", str(db), spelling, value])
        if value == "web":
            assert result.exit_code == 1 and "x" in result.output  # "x" is not a domain
        else:
            assert result.exit_code == 0, result.output
            assert [r["domain"] for r in sqlite_utils.Database(db)["accounts"].rows] == ["acme.test"]
