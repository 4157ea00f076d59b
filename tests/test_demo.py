"""``detector demo``: the bundled sites crawled offline, and the README it is advertised in."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from detector.cli.main import cli
from detector.store.scans import ERROR_KINDS
from tests.servers import ROOT, run_detector

README = ROOT / "README.md"


def test_demo_crawls_the_bundled_sites(tmp_path: Path) -> None:
    run = run_detector(["demo", "--db", str(tmp_path / "demo.db"), "--json"])
    assert run.code == 0, run.err
    summary = run.json()
    assert isinstance(summary, dict)
    assert (summary["domains_ok"], summary["domains_failed"]) == (8, 4)
    assert summary["failed_by_kind"] == {"dns": 1, "http_5xx": 1, "offsite": 1, "robots": 1}
    assert summary["invalid_lines"] == 2
    conn = sqlite3.connect(tmp_path / "demo.db")
    found = {(d, t) for d, t in conn.execute("select domain, technology from detections")}
    for expected in [
        ("northwind-blog.test", "WordPress"), ("northwind-blog.test", "Yoast SEO"),
        ("acme-outdoor.test", "Shopify"), ("acme-outdoor.test", "Klaviyo"),
        ("cloudly.test", "Segment"), ("cloudly.test", "Hotjar"), ("cloudly.test", "Google Tag Manager"),
        ("nextdash.test", "Next.js"), ("nextdash.test", "Vercel"),
        ("riverton-council.test", "Drupal"), ("woo-pottery.test", "WooCommerce"),
        ("docs-forge.test", "Hugo"), ("railsbank.test", "Ruby on Rails"),
    ]:
        assert expected in found
    scans = dict(conn.execute("select domain, coalesce(error_kind, status) from scans"))
    assert scans["gone-bankrupt.test"] == "dns"
    assert scans["old-brand.test"] == "offsite"
    assert scans["woo-pottery.test"] == "ok"  # no https: fell back to http
    assert conn.execute("select final_url from scans where domain = 'woo-pottery.test'").fetchone() == (
        "http://woo-pottery.test/",)


def test_demo_prints_summary_and_a_query(tmp_path: Path) -> None:
    run = run_detector(["demo", "--db", str(tmp_path / "demo.db"), "--workers", "0"])
    assert run.code == 0, run.err
    assert re.search(r"Crawled 12 domains in [\d.]+ s: 8 ok, 4 failed \(dns 1, http_5xx 1, offsite 1, robots 1\)\.", run.out)
    assert f'sqlite-utils {tmp_path / "demo.db"} "select domain, technology' in run.out
    assert '"acme outdoor" is not a domain name' in run.err
    status = run_detector(["status", "--db", str(tmp_path / "demo.db")])
    assert status.code == 0, status.err
    assert re.search(r"^Last crawl \(detector demo\): \S+ \(done\) 8 ok, 4 failed", status.out, re.MULTILINE), status.out


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"^python3 -m pip install[^\n]*$", text.split("\n## ", 1)[0], flags=re.MULTILINE)
    assert [c.split("#")[0].strip() for c in commands] == [
        "python3 -m pip install -e . && detector demo",
        "python3 -m pip install -e '.[test]' && python3 -m pytest -q",
    ]


def test_readme_documents_crawl_options_schema_and_error_kinds() -> None:
    text = README.read_text(encoding="utf-8")
    help_text = CliRunner().invoke(cli, ["crawl", "--help"]).output
    for option in sorted(set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}):
        assert option in text, f"README does not mention crawl option {option}"
    for kind in ERROR_KINDS:
        assert f"`{kind}`" in text, f"README does not explain error kind {kind}"
    for table in ("domains", "scans", "detections", "technologies", "categories", "_migrations"):
        assert f"`{table}`" in text
    assert "detector demo" in text and "detector crawl" in text
