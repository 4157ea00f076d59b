"""Real crawls: Scrapy in a subprocess, through the local virtual-host proxy, into SQLite."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.demo.vhosts import Route, Site, VirtualHostProxy, load_sites
from tests.servers import CORPUS, ROOT, SITES, Run, rows, run_detector, start_proxy, tls_context

EXPECTED = {
    # domain: (status, error_kind, final_url or None)
    "wp-site.test": ("ok", None, "https://wp-site.test/"),
    "http-only.test": ("ok", None, "http://http-only.test/"),
    "www-first.test": ("ok", None, "https://www.www-first.test/"),
    "xn--bcher-kva.test": ("ok", None, "https://xn--bcher-kva.test/"),
    "dead.test": ("error", "dns", None),
    "closed.test": ("error", "refused", None),
    "tls-broken.test": ("error", "tls", None),
    "slow.test": ("error", "timeout", None),
    "loop.test": ("error", "redirect_loop", None),
    "moved.test": ("error", "offsite", "https://wp-site.test/"),
    "robots.test": ("error", "robots", None),
    "missing.test": ("error", "http_4xx", "https://missing.test/"),
    "broken.test": ("error", "http_5xx", "https://broken.test/"),
    "pdf.test": ("error", "not_html", "https://pdf.test/"),
    "big.test": ("error", "too_large", None),
}

#: A local port nothing listens on: tests that must not crawl point here, so nothing leaves.
CLOSED_PROXY = "http://127.0.0.1:9"

INPUT = """# fixture accounts: every outcome a crawl can have
wp-site.test
https://www.wp-site.test/pricing/
http-only.test
www-first.test
bücher.test
dead.test
closed.test
tls-broken.test
slow.test
loop.test
moved.test
robots.test
missing.test
broken.test
pdf.test
big.test
exa mple.test
"""


@pytest.fixture(scope="module")
def proxy() -> Iterator[VirtualHostProxy]:
    server = start_proxy()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def crawled(proxy: VirtualHostProxy, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    tmp = tmp_path_factory.mktemp("crawl")
    (tmp / "domains.txt").write_text(INPUT, encoding="utf-8")
    db = tmp / "crawl.db"
    run = run_detector(["crawl", str(tmp / "domains.txt"), "--db", str(db), "--proxy", proxy.url, "--no-dns",
                        "--timeout", "1.5", "--retries", "0", "--max-size", "100k", "--workers", "1",
                        "--json"])
    assert run.code == 0, run.err
    return run, db


@pytest.mark.parametrize("domain", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_every_outcome_is_a_scan_row(crawled: tuple[Run, Path], domain: str) -> None:
    _, db = crawled
    (scan,) = rows(db, "select * from scans where domain = ?", domain)
    status, kind, final_url = EXPECTED[domain]
    assert (scan["status"], scan["error_kind"]) == (status, kind), scan["error_message"]
    if final_url:
        assert scan["final_url"] == final_url
    assert scan["offsite"] == (1 if kind == "offsite" else 0)
    if status == "error":
        assert scan["error_message"]
        assert scan["pages"] == 0
    (dom,) = rows(db, "select * from domains where domain = ?", domain)
    assert dom["last_status"] == status
    assert (dom["last_ok_at"] is not None) == (status == "ok")


def test_summary_and_invalid_lines(crawled: tuple[Run, Path]) -> None:
    run, _db = crawled
    summary = run.json()
    assert isinstance(summary, dict)
    failed = {k for _, k, _ in EXPECTED.values() if k}
    assert summary["domains_ok"] == 4
    assert summary["domains_failed"] == len(failed)
    assert summary["failed_by_kind"] == {k: 1 for k in sorted(failed)}
    assert summary["invalid_lines"] == 1
    assert 'domains.txt line 18: "exa mple.test" is not a domain name (it contains a space); skipped' in run.err
    assert summary["technologies"] >= 3
    assert {"technology": "WordPress", "domains": 1} in summary["top_technologies"]
    # Quiet by default: nothing but the invalid line on stderr (no Scrapy log).
    assert [line for line in run.err.splitlines() if line.strip()] == [
        line for line in run.err.splitlines() if line.startswith("warning: ")]


def test_site_verdict_merges_pages(crawled: tuple[Run, Path]) -> None:
    _, db = crawled
    found = {r["technology"]: r for r in rows(db, "select * from detections where domain = 'wp-site.test'")}
    assert found["WordPress"]["version"] == "6.4.2"
    assert found["Nginx"]["version"] == "1.24.0"
    # Stripe is only on /pricing/: its evidence names that page.
    stripe = json.loads(found["Stripe"]["evidence"])
    assert {e["page"] for e in stripe} == {"https://wp-site.test/pricing/"}
    wp_pages = {e["page"] for e in json.loads(found["WordPress"]["evidence"])}
    assert "https://wp-site.test/" in wp_pages
    assert json.loads(found["WordPress"]["categories"]) == ["CMS", "Blogs"]
    (scan,) = rows(db, "select * from scans where domain = 'wp-site.test'")
    assert scan["pages"] == 2  # homepage + pricing; /careers failed with a 500, which is not fatal
    version = rows(db, "select signatures_version from scans where domain = 'wp-site.test'")[0]
    assert len(version["signatures_version"]) >= 8
    assert rows(db, "select count(*) n from technologies")[0]["n"] > 1000
    www_first = {r["technology"] for r in rows(db, "select technology from detections where domain = 'www-first.test'")}
    assert www_first == {"Joomla", "PHP"}  # PHP is implied by Joomla
    assert {r["technology"] for r in rows(db, "select technology from detections where domain = 'http-only.test'")} == {"Hugo"}


def test_rescan_keeps_first_seen(crawled: tuple[Run, Path], proxy: VirtualHostProxy, tmp_path: Path) -> None:
    _, db = crawled
    before = {r["technology"]: r for r in rows(db, "select * from detections where domain = 'wp-site.test'")}
    run = run_detector(["crawl", "-", "--db", str(db), "--proxy", proxy.url, "--no-dns", "--workers", "0", "--pages", "0"],
                       stdin="wp-site.test\n")
    assert run.code == 0, run.err
    after = {r["technology"]: r for r in rows(db, "select * from detections where domain = 'wp-site.test'")}
    assert after["WordPress"]["first_seen"] == before["WordPress"]["first_seen"]
    assert after["WordPress"]["last_seen"] > before["WordPress"]["first_seen"] or after["WordPress"]["last_seen"] >= before["WordPress"]["last_seen"]
    assert len(rows(db, "select * from scans where domain = 'wp-site.test'")) == 2
    assert "Crawled 1 domain in" in run.out and "1 ok, 0 failed" in run.out


def test_scrapy_crawl_domains_runs_the_same_spider(proxy: VirtualHostProxy, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("http-only.test\ndead.test\n", encoding="utf-8")
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "domains", "-a", f"input={tmp_path / 'in.txt'}",
         "-s", f"DETECTOR_DB={db}", "-s", f"DETECTOR_PROXY={proxy.url}", "-s", "DETECTOR_DETECT=False",
         "-s", "LOG_LEVEL=WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = {r["domain"]: (r["status"], r["error_kind"]) for r in rows(db, "select * from scans")}
    assert got == {"http-only.test": ("ok", None), "dead.test": ("error", "dns")}


def corpus_cases(limit: int) -> list[dict[str, Any]]:
    """Pages with real headers and HTML from MIT/Apache sources of the shared corpus."""
    out = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            if case["license"] not in ("MIT", "Apache-2.0") or not case["html"] or not case["headers"]:
                continue
            if len(case["html"]) > 200_000 or case.get("status") not in (200, "200"):
                continue
            out.append(case)
            if len(out) == limit:
                break
    return out


SKIP_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection", "content-type",
                "keep-alive", "location", "status"}


#: Corpus excerpts committed in tests/sites (see tests/sites/SOURCES.md).
EXCERPT_SITES = ("soldaini-net.test", "deadlists-com.test")


def served_case(site: Site) -> dict[str, Any]:
    """The ``detect --cases`` case for a site's homepage exactly as the proxy serves it."""
    route = site.route("/")
    served: dict[str, list[str]] = {}
    for k, v in [*route.headers, ("Content-Length", str(len(route.body)))]:
        served.setdefault(k.lower(), []).append(v)
    return {"id": site.host, "url": f"https://{site.host}/", "status": route.status, "headers": served,
            "html": route.body.decode("utf-8")}


def test_crawled_site_matches_detect_cases(tmp_path: Path) -> None:
    """A site crawled gives the same detections as its page through ``detect --cases``."""
    local = load_sites(SITES)
    sites: dict[str, Site] = {h: local[h] for h in EXCERPT_SITES}
    if CORPUS.exists():  # more real pages when ../shared is beside the checkout
        for n, case in enumerate(corpus_cases(8)):
            host = f"corpus{n}.test"
            headers = [(k, v) for k, vs in case["headers"].items() if k not in SKIP_HEADERS for v in vs]
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            sites[host] = Site(host, {"/": Route(200, tuple(headers), case["html"].encode("utf-8"))})
    cases = [served_case(site) for site in sites.values()]
    server = VirtualHostProxy(sites, ssl_context=tls_context(list(sites))).start()
    try:
        (tmp_path / "in.txt").write_text("\n".join(sites) + "\n", encoding="utf-8")
        db = tmp_path / "c.db"
        run = run_detector(["crawl", str(tmp_path / "in.txt"), "--db", str(db), "--proxy", server.url, "--no-dns",
                            "--pages", "0", "--workers", "1", "--ignore-robots"])
        assert run.code == 0, run.err
    finally:
        server.stop()
    with (tmp_path / "cases.jsonl").open("w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c) + "\n")
    detect = run_detector(["detect", "--cases", str(tmp_path / "cases.jsonl"), "--json"])
    assert detect.code == 0, detect.err
    expected = {
        (page["url"].split("/")[2], t["name"], t["version"], t["confidence"])
        for page in detect.json() for t in page["technologies"]  # type: ignore[union-attr]
    }
    got = {(r["domain"], r["technology"], r["version"], r["confidence"]) for r in rows(db, "select * from detections")}
    assert {d for d, *_ in expected} >= set(EXCERPT_SITES)
    assert ("soldaini-net.test", "GitHub Pages", None, 100) in got
    assert ("deadlists-com.test", "IIS", "6.0", 100) in got
    assert got == expected


# ------------------------------------------------------------------ the CLI, without crawling


def test_crawl_help_names_every_option() -> None:
    result = CliRunner().invoke(cli, ["crawl", "--help"])
    assert result.exit_code == 0
    for option in ("--db", "--column", "--keep-subdomains", "--allow-ip", "--pages", "--concurrency",
                   "--per-site", "--timeout", "--retries", "--max-size", "--user-agent", "--proxy",
                   "--ignore-robots", "--no-detect", "--workers", "--signatures", "--json", "--progress", "-v"):
        assert option in result.output
    assert "Example: detector crawl" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope.txt"], 66, "nope.txt: no such file. Check the path; nothing was read."),
        (["{csv}"], 2, "no domain, website or url column in the header (name, employees)"),
        (["{csv}", "--column", "web"], 2, 'no column "web"'),
        (["{txt}", "--db", "{tmp}/missing/x.db"], 1, "the folder"),
        (["{txt}", "--proxy", "proxy:3128"], 2, "is not a proxy URL"),
        (["{txt}", "--max-size", "lots"], 2, '"lots" is not a size'),
        (["-", "-"], 2, '"-" (stdin) can be given once'),
    ],
    ids=["missing-file", "csv-no-column", "csv-bad-column", "db-folder-missing", "bad-proxy", "bad-size", "stdin-twice"],
)
def test_usage_errors_exit_before_crawling(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    (tmp_path / "a.csv").write_text("name,employees\nAcme,5\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("example.com\n", encoding="utf-8")
    fmt = {"csv": str(tmp_path / "a.csv"), "txt": str(tmp_path / "a.txt"), "tmp": str(tmp_path)}
    argv = ["crawl", *[a.format(**fmt) for a in args]]
    if "--proxy" not in argv:
        argv += ["--proxy", CLOSED_PROXY]  # should a check ever let a crawl start, it stays local
    if "--db" not in argv:
        argv += ["--db", str(tmp_path / "x.db")]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_csv_from_stdin_with_progress_and_subdomains(proxy: VirtualHostProxy, tmp_path: Path) -> None:
    csv_text = 'Account,Home Page\n"WP, Inc.",https://wp-site.test/about\nWWW,www.www-first.test\nNobody,\n'
    db = tmp_path / "p.db"
    run = run_detector(["crawl", "-", "--column", "Home Page", "--keep-subdomains", "--db", str(db),
                        "--proxy", proxy.url, "--no-dns", "--workers", "1", "--pages", "0", "--progress", "--json"],
                       stdin=csv_text)
    assert run.code == 0, run.err
    assert {r["domain"]: r["status"] for r in rows(db, "select * from scans")} == {
        "wp-site.test": "ok", "www-first.test": "ok"}
    assert '<stdin> line 4: "" has an empty domain cell; skipped' in run.err
    # The progress line is redrawn in place (carriage return, erase to end of line).
    assert re.search(r"^2 domains  [\d.]+ pages/s  errors 0\x1b\[K$", run.err, flags=re.MULTILINE), run.err
    assert run.json()["invalid_lines"] == 1  # type: ignore[index]


def test_bad_signature_directory_is_reported_before_crawling(tmp_path: Path) -> None:
    sigs = tmp_path / "sigs"
    sigs.mkdir()
    (sigs / "categories.yaml").write_text("1:\n  name: CMS\n  priority: 1\n", encoding="utf-8")
    (sigs / "broken.yaml").write_text("name: Broken\ncategories: [CMS]\nhtml: '<div class=\"[unclosed'\n",
                                      encoding="utf-8")
    (tmp_path / "a.txt").write_text("example.com\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["crawl", str(tmp_path / "a.txt"), "--db", str(tmp_path / "x.db"),
                                      "--signatures", str(sigs), "--proxy", CLOSED_PROXY])
    assert result.exit_code == 1
    assert "broken.yaml" in result.output


def test_engine_workers_that_cannot_start_fail_the_run(tmp_path: Path) -> None:
    sigs = tmp_path / "sigs"
    sigs.mkdir()
    (sigs / "categories.yaml").write_text("1:\n  name: CMS\n  priority: 1\n", encoding="utf-8")
    (sigs / "broken.yaml").write_text("name: Broken\ncategories: [CMS]\nhtml: '[unclosed'\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("example.com\n", encoding="utf-8")
    code = (
        "from detector.crawl.runner import CrawlOptions, run_crawl\n"
        f"run_crawl(CrawlOptions(inputs=({str(tmp_path / 'a.txt')!r},), db={str(tmp_path / 'x.db')!r}, "
        f"proxy={CLOSED_PROXY!r}, workers=1, signatures=({str(sigs)!r},)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert "CrawlError: the crawl could not start" in proc.stderr
    assert "broken.yaml" in proc.stderr
    assert rows(tmp_path / "x.db", "select count(*) n from scans") == [{"n": 0}]


def test_cookie_middleware_uses_the_bundled_suffix_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrapy's cookie middleware would download the public suffix list; ours never connects."""
    import socket

    from scrapy.downloadermiddlewares import cookies as scrapy_cookies
    from scrapy.utils.test import get_crawler

    from detector.crawl.middlewares import BundledSuffixCookiesMiddleware

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args}")

    monkeypatch.setattr(scrapy_cookies, "_split_domain", scrapy_cookies._split_domain)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    BundledSuffixCookiesMiddleware.from_crawler(get_crawler(settings_dict={"COOKIES_ENABLED": True}))
    # tldextract swallows download errors, so check the configuration too: no URL to fetch.
    assert scrapy_cookies._split_domain.suffix_list_urls == ()
    assert scrapy_cookies._is_public_domain("co.uk")
    assert not scrapy_cookies._is_public_domain("example.co.uk")
    assert scrapy_cookies._is_public_domain("test")  # reserved suffixes count as public


def test_a_python_user_crawls_without_the_cli(proxy: VirtualHostProxy, tmp_path: Path) -> None:
    """crawl.run() returns a report with the run's summary; nothing of detector.cli is imported.

    (click itself is: sqlite-utils imports it for its plugin hooks.)
    """
    (tmp_path / "domains.txt").write_text("wp-site.test\nmissing.test\n", encoding="utf-8")
    code = (
        "import json, sys\n"
        "from detector.crawl import CrawlOptions, run\n"
        "report = run(CrawlOptions(inputs=(sys.argv[1],), db=sys.argv[2], proxy=sys.argv[3], workers=0,\n"
        "                          timeout=3.0, retries=0))\n"
        "assert not [m for m in sys.modules if m.startswith('detector.cli')], 'the CLI was imported'\n"
        "print(json.dumps({'status': report.status, 'ok': report.summary['domains_ok'],\n"
        "                  'failed': report.summary['failed_by_kind'], 'run': report.run_id}))\n"
    )
    db = tmp_path / "py.db"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "domains.txt"), str(db), proxy.url],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["status"], out["ok"], out["failed"]) == ("done", 1, {"http_4xx": 1})
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status, domains_ok, domains_failed FROM runs WHERE id = ?",
                            [out["run"]]).fetchone() == ("done", 1, 1)
