"""``detector report``: the data it reads and the page it writes, on real SQLite files built
with the Store (the browser's view of the page is tests/test_report_browser.py)."""

from __future__ import annotations

import base64
import doctest
import hashlib
import html.parser
import importlib
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detector.cli import cli
from detector.engine.signatures import load_signatures
from detector.engine.verdict import SiteDetection
from detector.report import ReportOptions, build_report, write_report
from detector.segment.assign import Assignment, Membership
from detector.segment.rules import Vocabulary, parse_rules
from detector.store.cohorts import write_segmentation
from detector.store.report import read_report
from detector.store.scans import ScanResult
from detector.store.store import Store
from detector.timestamps import format_time
from tests.conftest import ROOT, TEST_SIGNATURES

#: A Wednesday: its week starts on Monday 2026-11-23.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
EVIL_TECH = '<script>alert("tech")</script>'
EVIL_CATEGORY = "<img src=x onerror=alert(1)>"
EVIL_VERSION = '"><svg onload=alert(2)>'
EVIL_DOMAIN = "<b>bold</b>.test"


def at(days: float) -> str:
    return format_time(NOW - timedelta(days=days))


def scan(domain: str, when: str, *techs: tuple[str, str], status: str = "ok", kind: str = "timeout",
         version: str | None = None) -> ScanResult:
    return ScanResult(
        domain=domain, run_id="r-" + when, started_at=when, finished_at=when, status=status,
        error_kind=None if status == "ok" else kind, error_message=None if status == "ok" else "it failed",
        pages=1, detections=tuple(SiteDetection(t, version if t == EVIL_TECH else None, 100, (c,), ())
                                  for t, c in techs),
    )


PRESS = ("PressCMS", "CMS")
SHOPY = ("Shopy", "Ecommerce")
EVIL = (EVIL_TECH, EVIL_CATEGORY)


def build(path: Path) -> Path:
    """Six domains over four weeks: adoption, a removal, two failures, old data, one never scanned."""
    with Store.open(path) as store:
        store.mirror_library(load_signatures([TEST_SIGNATURES]))
        store.record_scans([scan("a.test", at(22), PRESS, SHOPY), scan("e.test", at(60), PRESS)])
        store.record_scans([scan("b.test", at(8), PRESS, EVIL, version=EVIL_VERSION)])
        store.record_scans([scan("a.test", at(1), PRESS), scan("c.test", at(1), status="error"),
                            scan("d.test", at(1), status="error", kind="dns"),
                            scan(EVIL_DOMAIN, at(2), SHOPY)], miss_threshold=1)
        store.add_domains(["f.test"], now=at(1))
    return path


#: Members written by the segment writer: (domain, tier, [(cohort, stale)]).
MEMBERS = [
    ("a.test", 2, [("integration", False)]),
    ("b.test", 1, [("integration", False), ("displacement", False)]),
    ("e.test", None, [("integration", True)]),
]


def segment(path: Path, name: str = "default") -> None:
    rules = parse_rules(
        "product:\n  name: X\n  integrates_with: [PressCMS]\n  competitors: [Shopy]\n"
        "tiers:\n  points: {integration: 30, displacement: 40}\n  thresholds: {1: 60, 2: 30, 3: 10}\n",
        Vocabulary({"PressCMS": ("CMS",), "Shopy": ("Ecommerce",)}, ("CMS", "Ecommerce")),
    )
    assignments = [Assignment(d, tuple(Membership(c, d, f"{d} runs it", stale=s) for c, s in ms), 50.0, tier)
                   for d, tier, ms in MEMBERS]
    with Store.open(path) as store:
        write_segmentation(store.db, rules, assignments, format_time(NOW), segmentation=name)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build(tmp_path / "r.db")


class Page(html.parser.HTMLParser):
    """The page's elements: (tag, attributes, the ids of the enclosing elements) in document order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self.stack: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a, tuple(i for _, i in self.stack if i)))
        if tag not in ("meta", "input", "br", "img", "link"):  # void elements: no end tag
            self.stack.append((tag, a.get("id", "")))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, tuple(i for _, i in self.stack if i)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)

    def bars(self, figure: str) -> list[dict[str, str]]:
        return [a for tag, a, ids in self.elements if tag == "rect" and figure in ids and "bar" in a["class"].split()]


def page_of(db: Path, **options: Any) -> tuple[str, Page]:
    text, _, _ = build_report(db, ReportOptions(now=NOW, **options))
    return text, Page(text)


# ---------------------------------------------------------------------------- the data


def test_reads_every_section(db: Path) -> None:
    segment(db)
    with Store.open(db) as store:
        data = read_report(store.db, ReportOptions(top=10, weeks=4, now=NOW))
    assert [(t.name, t.domains, t.detail) for t in data.technologies] == [
        ("PressCMS", 3, "CMS"), (EVIL_TECH, 1, EVIL_CATEGORY), ("Shopy", 1, "Ecommerce")]
    assert data.technology_total == 3
    assert [(c.name, c.domains, c.technologies) for c in data.categories] == [
        ("CMS", 3, 1), (EVIL_CATEGORY, 1, 1), ("Ecommerce", 1, 1)]
    # Weeks from Monday 2026-11-02 to this one (2026-11-23): a.test's first scan on 11-03 (e.test's
    # is older than the window), b.test 8 days ago, Shopy's removal and bold's Shopy this week.
    assert [(w.start, w.added, w.removed) for w in data.weeks] == [
        ("2026-11-02", 2, 0), ("2026-11-09", 0, 0), ("2026-11-16", 2, 0), ("2026-11-23", 1, 1)]
    h = data.health
    assert (h.domains, h.ok, h.never_scanned, h.errors) == (7, 4, 1, (("dns", 1), ("timeout", 1)))
    assert dict(h.ages) == {"< 1d": 0, "1-7d": 2, "7-30d": 1, "30-90d": 1, "> 90d": 0, "never": 3}
    assert (h.active_detections, h.stale_detections, h.stale_share) == (5, 1, 0.2)
    (seg,) = data.segmentations or ()
    sizes = {c.name: {k: n for k, n in c.counts if n} for c in seg.cohorts}
    assert sizes["integration"] == {"tier 1": 1, "tier 2": 1, "stale": 1}
    assert sizes["displacement"] == {"tier 1": 1}
    rows = {r.domain: r for r in data.domains}
    assert list(rows) == sorted(rows)
    assert (rows["a.test"].technologies, rows["a.test"].tier, rows["a.test"].stale) == ((("PressCMS", ""),), 2, False)
    assert (rows["b.test"].tier, [c for _, c, _ in rows["b.test"].cohorts]) == (1, ["integration", "displacement"])
    assert rows["e.test"].cohorts == (("default", "integration", True),) and rows["e.test"].stale
    assert (rows["d.test"].status, rows["d.test"].error_kind, rows["f.test"].status) == ("error", "dns", "never")


def test_no_segmentation_reads_as_none(db: Path) -> None:
    with Store.open(db) as store:
        assert read_report(store.db, ReportOptions(now=NOW)).segmentations is None


# ---------------------------------------------------------------------------- the page


def test_charts_draw_one_bar_per_value(db: Path) -> None:
    segment(db)
    _, page = page_of(db, weeks=4)
    assert len(page.bars("fig-technologies")) == 3
    assert len(page.bars("fig-categories")) == 3
    assert len(page.bars("fig-changes")) == 4  # added in 3 weeks, removed in 1
    assert [b["class"] for b in page.bars("fig-outcomes")] == ["bar ok", "bar err", "bar err"]
    assert len(page.bars("fig-ages")) == 4  # 1-7d, 7-30d, 30-90d, never
    expected = Counter(("stale" if s else f"t{t}") for _, t, ms in MEMBERS for _, s in ms)
    assert Counter(b["class"].split()[1] for b in page.bars("fig-cohorts-default")) == expected
    assert all(float(b["width"]) > 0 and float(b["height"]) > 0 for tag, b, _ in page.elements if tag == "rect")
    # The longest bar is the largest value; the others in proportion.
    widths = [float(b["width"]) for b in page.bars("fig-technologies")]
    assert widths[0] == max(widths) and widths[1] == pytest.approx(widths[0] / 3, rel=0.01)


def test_untrusted_values_are_escaped(db: Path) -> None:
    segment(db)
    text, page = page_of(db)
    for evil in (EVIL_TECH, EVIL_CATEGORY, EVIL_VERSION, EVIL_DOMAIN):
        assert evil not in text
    assert html.escape(EVIL_TECH) in text and html.escape(EVIL_DOMAIN) in text
    shown = "".join(page.text)
    assert EVIL_TECH in shown and EVIL_CATEGORY in shown and f"{EVIL_TECH} {EVIL_VERSION}" in shown
    assert [tag for tag, _, _ in page.elements].count("script") == 1
    assert [tag for tag, _, _ in page.elements if tag in ("img", "b", "iframe")] == []
    assert [(tag, k) for tag, a, _ in page.elements for k in a if k.startswith("on")] == []


def test_page_is_self_contained(db: Path) -> None:
    text, page = page_of(db)
    links = [(tag, k, v) for tag, a, _ in page.elements for k, v in a.items() if k in ("href", "src", "action")]
    assert links and all(k == "href" and v.startswith("#") for _, k, v in links), links
    assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"] * text.count("<svg")
    assert "@import" not in text and "url(" not in text and "@font-face" not in text
    (csp,) = [a["content"] for tag, a, _ in page.elements if a.get("http-equiv") == "Content-Security-Policy"]
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in csp and csp.startswith("default-src 'none';")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "@media print" in text and "@media (max-width:640px)" in text


def test_empty_database_gets_a_clear_page(tmp_path: Path) -> None:
    Store.open(tmp_path / "empty.db").close()
    text, page = page_of(tmp_path / "empty.db")
    ids = {a.get("id") for _, a, _ in page.elements}
    assert {"empty-database", "no-segmentation"} <= ids
    assert "This database holds no domains yet" in text and "detector crawl domains.txt --db" in text
    assert [tag for tag, _, _ in page.elements].count("rect") == 0
    assert "No technology was added to or removed from any domain in the last 12 weeks." in text


def test_top_rows_and_weeks_limit_the_page(db: Path) -> None:
    _, page = page_of(db, top=1, rows=2, weeks=1)
    assert len(page.bars("fig-technologies")) == 1 and len(page.bars("fig-categories")) == 1
    assert len(page.bars("fig-changes")) == 2  # this week: one added, one removed
    assert len([1 for tag, _, ids in page.elements if tag == "tr" and "domains" in ids]) == 3  # header + 2
    assert "The table lists the first 2 of 7 domains" in "".join(page.text)


def test_several_segmentations_each_get_a_chart(db: Path) -> None:
    segment(db)
    segment(db, "q3-review")
    _, page = page_of(db)
    assert len(page.bars("fig-cohorts-default")) == len(page.bars("fig-cohorts-q3-review")) == 4
    assert "q3-review: integration" in "".join(page.text)


@pytest.mark.parametrize("module", ["detector.report.svg", "detector.report.page", "detector.store.report"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted and not result.failed


# ---------------------------------------------------------------------------- the command


def test_cli_writes_the_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    size = out.stat().st_size
    assert result.stderr == (f"Wrote {out} ({size / 1024:,.0f} KB): 7 domain(s). "
                             "Open it in any browser; it needs no network.\n")
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_cli_prints_to_stdout(db: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "-o", "-", "--top", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.endswith("</html>\n")
    assert len(Page(result.stdout).bars("fig-technologies")) == 2


def test_cli_missing_database_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "nope.db"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'nope.db'}: no such database. Crawl a domain list into it first: "
                             f"detector crawl domains.txt --db {tmp_path / 'nope.db'}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-o", "{tmp}/no/such/folder.html"], 73, "the folder {tmp}/no/such does not exist"),
        (["-o", "{tmp}"], 2, "is a directory"),
        (["--top", "0"], 2, "--top"),
        (["--stale-after", "7x"], 2, "--stale-after"),
    ],
    ids=["missing-folder", "folder-as-file", "top-zero", "bad-duration"],
)
def test_cli_refuses_bad_output_and_options(db: Path, tmp_path: Path, args: list[str], code: int,
                                            message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, ["report", "--db", str(db), *args])
    assert result.exit_code == code, result.output
    assert message.replace("{tmp}", str(tmp_path)) in result.stderr


def test_write_report_replaces_a_file_atomically(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    written = write_report(db, out, ReportOptions(now=NOW))
    assert (written.domains, written.domains_listed, written.size) == (7, 7, out.stat().st_size)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if "report" in p.name] == ["report.html"]  # no temporary file left


def test_help_has_examples_and_the_readme_every_option() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "detector report --db detector.db -o report.html" in result.output
    assert "-o, --output" in result.output and "Exit status" in result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "detector report --db detector.db -o report.html" in readme
    for option in set(re.findall(r"(--[a-z][a-z-]+)", result.output)) - {"--help"}:
        assert option in readme, f"README does not mention report option {option}"
