"""How each page of a crawl ends, and what the scan makes of it: real crawls on local sites.

Every crawl runs in a subprocess (the reactor starts once per process) through a local
virtual-host proxy serving tests/sites/ plus a few sites built here; the proxy notes every
request it serves, so tests can tell what was fetched, and when.  A second pipeline
(tests/dump_pipeline.py) writes each SiteItem's page outcomes to a file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from detector.demo.vhosts import Route, Site, VirtualHostProxy, load_sites
from tests.servers import ROOT, SITES, rows, tls_context

HTML = (("Content-Type", "text/html; charset=utf-8"),)
HUGO = b'<!DOCTYPE html><html><head><meta name="generator" content="Hugo 0.120.0"></head><body>Hi</body></html>'


def built_sites() -> dict[str, Site]:
    """Sites that need more than files: failures on one scheme, slow homepages."""
    slow = Route(200, HTML, HUGO, delay=4)
    sites = {
        # https refused (no 443), http answers too slowly: the http attempt's timeout is the error.
        "fb-refused-slow.test": Site("fb-refused-slow.test", {"/": slow}, https=False),
        # https handshake broken, http too slow: a timeout too.
        "fb-tls-slow.test": Site("fb-tls-slow.test", {"/": slow}, tls="broken"),
        # https handshake broken, http answers 503: the http answer is the error.
        "fb-tls-503.test": Site("fb-tls-503.test", {"/": Route(503, HTML, b"busy")}, tls="broken"),
    }
    for n in range(40):  # the lock test's sites: each homepage takes a moment
        host = f"steady{n}.test"
        sites[host] = Site(host, {"/": Route(200, HTML, HUGO, delay=0.3)})
    for n in range(60):  # the backpressure test's sites: quick ones
        host = f"quick{n}.test"
        sites[host] = Site(host, {"/": Route(200, HTML, HUGO, delay=0.05)}, https=False)
    for n in range(6):  # the engine-failure test's sites
        host = f"engine{n}.test"
        sites[host] = Site(host, {"/": Route(200, HTML, HUGO, delay=1.0)})
    return sites


@dataclass
class Web:
    """The proxy, its sites (editable while it runs) and the log of what it served."""

    sites: dict[str, Site]
    proxy: VirtualHostProxy | None = None
    served: list[tuple[float, str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, scheme: str, host: str, path: str) -> None:
        with self.lock:
            self.served.append((time.monotonic(), scheme, host, path))

    def requests(self, host: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(scheme, path) for _, scheme, h, path in self.served if h == host]

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    w = Web({**load_sites(SITES), **built_sites()})
    hosts = sorted({h for s in w.sites for h in (s, "*." + s)})
    w.proxy = VirtualHostProxy(lambda host: w.sites.get(host), ssl_context=tls_context(hosts),
                               on_request=w.note).start()
    yield w
    w.proxy.stop()


CRAWL = """
import json, sys
from detector.crawl.runner import CrawlOptions, run_crawl
opts = json.loads(sys.argv[1])
opts["inputs"] = tuple(opts["inputs"])
report = run_crawl(CrawlOptions(**opts))
print(json.dumps({k: v for k, v in report.stats.items() if k.startswith("detector/")}, default=str))
"""


@dataclass
class Crawl:
    stats: dict[str, Any]
    items: dict[str, dict[str, Any]]
    db: Path


def crawl(web: Web, tmp: Path, domains: list[str], **options: Any) -> Crawl:
    """Crawl ``domains`` with run_crawl() in a subprocess; the dump pipeline notes every item."""
    listing = tmp / "domains.txt"
    listing.write_text("\n".join(domains) + "\n", encoding="utf-8")
    dump = tmp / "items.jsonl"
    dump.unlink(missing_ok=True)
    db = Path(options.pop("db", tmp / "crawl.db"))
    opts: dict[str, Any] = {
        "inputs": [str(listing)], "db": str(db), "proxy": web.url, "workers": 0, "retries": 0,
        "timeout": 1.5, "pages": 2,
        **options,
        "extra": {
            "ITEM_PIPELINES": {"detector.crawl.pipelines.DetectStorePipeline": 300,
                               "tests.dump_pipeline.DumpOutcomesPipeline": 400},
            "TEST_DUMP": str(dump), **options.get("extra", {}),
        },
    }
    proc = subprocess.run([sys.executable, "-c", CRAWL, json.dumps(opts)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    items = {}
    if dump.exists():
        for line in dump.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            items[item["domain"]] = item
    return Crawl(json.loads(proc.stdout.strip().splitlines()[-1]), items, db)


def outcomes(item: dict[str, Any]) -> dict[str, str]:
    return {r["url"]: r["outcome"] for r in item["results"]}


def scan_of(db: Path, domain: str) -> dict[str, Any]:
    (scan,) = rows(db, "select * from scans where domain = ?", domain)
    return scan


# ------------------------------------------------------------------ outcomes of one crawl


@pytest.fixture(scope="module")
def outcome_crawl(web: Web, tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    domains = ["sso-login.test", "sso-down.test", "moved-dead.test", "robots-http.test", "robots-cart.test", "robots.test", "moved.test",
               "wp-site.test", "missing.test", "tls-broken.test", "fb-refused-slow.test", "fb-tls-slow.test",
               "fb-tls-503.test"]
    return crawl(web, tmp_path_factory.mktemp("outcomes"), domains)


def test_offsite_login_page_is_left_out_of_the_verdict(outcome_crawl: Crawl) -> None:
    item = outcome_crawl.items["sso-login.test"]
    assert outcomes(item) == {
        "https://sso-login.test/": "ok",
        "https://sso-login.test/login": "offsite",
        "https://sso-login.test/pricing": "ok",
    }
    (login,) = [r for r in item["results"] if r["outcome"] == "offsite"]
    assert login["final_url"] == "https://sso-vendor.test/authorize?client=sso-login"
    assert item["pages_offsite"] == 1 and item["pages_failed"] == 0
    assert item["pages"] == ["https://sso-login.test/", "https://sso-login.test/pricing"]
    scan = scan_of(outcome_crawl.db, "sso-login.test")
    # A complete, successful scan of the account's own pages: misses count, nothing is partial.
    assert (scan["status"], scan["pages"], scan["pages_failed"], scan["counted"], scan["offsite"]) == ("ok", 2, 0, 1, 0)
    assert (scan["pages_offsite"], scan["pages_blocked"]) == (1, 0)  # recorded, not in the verdict
    found = rows(outcome_crawl.db, "select technology, evidence from detections where domain = 'sso-login.test'")
    assert {r["technology"] for r in found} == {"Hugo"}  # not the vendor's WordPress, Stripe, Express
    assert not any("sso-vendor.test" in r["evidence"] for r in found)
    # With sso-down.test's /login and the homepages of moved.test and moved-dead.test.
    assert outcome_crawl.stats["detector/page/offsite"] == 4


def test_offsite_page_that_fails_there_is_still_offsite(outcome_crawl: Crawl) -> None:
    """/login sent to a vendor that times out: the vendor's trouble; the scan stays complete."""
    item = outcome_crawl.items["sso-down.test"]
    assert outcomes(item) == {"https://sso-down.test/": "ok", "https://sso-down.test/login": "offsite",
                              "https://sso-down.test/pricing": "ok"}
    (login,) = [r for r in item["results"] if r["outcome"] == "offsite"]
    assert login["final_url"] == "https://sso-vendor.test/slow" and login["reason"].startswith("timeout: ")
    scan = scan_of(outcome_crawl.db, "sso-down.test")
    assert (scan["status"], scan["pages"], scan["pages_failed"], scan["counted"]) == ("ok", 2, 0, 1)


def test_homepage_redirected_to_a_dead_site_is_offsite(outcome_crawl: Crawl, web: Web) -> None:
    scan = scan_of(outcome_crawl.db, "moved-dead.test")
    assert (scan["status"], scan["error_kind"], scan["offsite"], scan["final_url"]) == (
        "error", "offsite", 1, "https://nowhere-target.test/")
    assert scan["error_message"].startswith("redirected to https://nowhere-target.test/, which failed: dns: ")
    assert web.requests("moved-dead.test") == [("https", "/robots.txt"), ("https", "/")]  # no http retry


def test_offsite_homepage_is_an_offsite_error(outcome_crawl: Crawl) -> None:
    """Unchanged: a homepage redirected to another company's site says nothing about this one."""
    item = outcome_crawl.items["moved.test"]
    assert [(r["outcome"], r["final_url"], r["homepage"]) for r in item["results"]] == [
        ("offsite", "https://wp-site.test/", True)]
    scan = scan_of(outcome_crawl.db, "moved.test")
    assert (scan["status"], scan["error_kind"], scan["offsite"], scan["final_url"]) == (
        "error", "offsite", 1, "https://wp-site.test/")


def test_robots_of_the_http_site_is_its_own(outcome_crawl: Crawl, web: Web) -> None:
    """https refused: its robots.txt has no answer; http's robots.txt forbids all, and rules."""
    scan = scan_of(outcome_crawl.db, "robots-http.test")
    assert (scan["status"], scan["error_kind"], scan["pages"]) == ("error", "robots", 0)
    assert scan["error_message"].startswith("https://robots-http.test/: refused: ")
    assert scan["error_message"].endswith(
        "; then http://robots-http.test/: robots: http://robots-http.test/robots.txt forbids fetching "
        "http://robots-http.test/")
    assert web.requests("robots-http.test") == [("http", "/robots.txt")]
    assert outcomes(outcome_crawl.items["robots-http.test"]) == {"http://robots-http.test/": "blocked"}


def test_robots_blocked_homepage_is_a_clear_row(outcome_crawl: Crawl, web: Web) -> None:
    scan = scan_of(outcome_crawl.db, "robots.test")
    assert (scan["status"], scan["error_kind"]) == ("error", "robots")
    assert scan["error_message"] == "https://robots.test/robots.txt forbids fetching https://robots.test/"
    assert web.requests("robots.test") == [("https", "/robots.txt")]  # no http attempt either


def test_robots_blocked_extra_page_is_skipped_not_partial(outcome_crawl: Crawl, web: Web) -> None:
    item = outcome_crawl.items["robots-cart.test"]
    assert outcomes(item) == {"https://robots-cart.test/": "ok", "https://robots-cart.test/cart": "blocked",
                              "https://robots-cart.test/pricing": "ok"}
    assert ("https", "/cart") not in web.requests("robots-cart.test")
    scan = scan_of(outcome_crawl.db, "robots-cart.test")
    assert (scan["status"], scan["pages"], scan["pages_failed"], scan["counted"]) == ("ok", 2, 0, 1)
    assert (scan["pages_offsite"], scan["pages_blocked"]) == (0, 1)
    assert "Stripe" not in {r["technology"] for r in rows(outcome_crawl.db, "select technology from detections "
                                                                            "where domain = 'robots-cart.test'")}


def test_gone_and_transient_extra_pages(outcome_crawl: Crawl) -> None:
    """wp-site.test: /careers answers 500 (transient: partial), /blog/ is a 404 elsewhere (gone)."""
    item = outcome_crawl.items["wp-site.test"]
    assert outcomes(item) == {"https://wp-site.test/": "ok", "https://wp-site.test/pricing/": "ok",
                              "https://wp-site.test/careers": "transient"}
    scan = scan_of(outcome_crawl.db, "wp-site.test")
    assert (scan["pages"], scan["pages_failed"], scan["counted"]) == (2, 1, 0)
    assert outcomes(outcome_crawl.items["missing.test"]) == {"https://missing.test/": "gone"}


@pytest.mark.parametrize(
    ("domain", "kind", "parts"),
    [
        ("fb-refused-slow.test", "timeout", ["https://fb-refused-slow.test/: refused",
                                            "then http://fb-refused-slow.test/: timeout"]),
        ("fb-tls-slow.test", "timeout", ["https://fb-tls-slow.test/: tls", "then http://fb-tls-slow.test/: timeout"]),
        ("fb-tls-503.test", "http_5xx", ["https://fb-tls-503.test/: tls",
                                        "then http://fb-tls-503.test/: http_5xx: HTTP 503"]),
        # Nothing listens on port 80: the https failure is what the site has.
        ("tls-broken.test", "tls", ["https://tls-broken.test/: tls", "then http://tls-broken.test/: refused"]),
    ],
    ids=["refused-then-timeout", "tls-then-timeout", "tls-then-503", "tls-then-refused"],
)
def test_http_fallback_keeps_the_http_error(outcome_crawl: Crawl, domain: str, kind: str, parts: list[str]) -> None:
    scan = scan_of(outcome_crawl.db, domain)
    assert (scan["status"], scan["error_kind"]) == ("error", kind), scan["error_message"]
    for part in parts:
        assert part in scan["error_message"]
    assert [r["url"] for r in outcome_crawl.items[domain]["results"]] == [f"http://{domain}/"]


# ------------------------------------------------------------------ outcomes over two crawls


def test_removal_is_recorded_past_a_blocked_page(web: Web, tmp_path: Path) -> None:
    """A page robots.txt forbids is never fetched, so it cannot keep a scan partial for ever."""
    db = tmp_path / "r.db"
    first = crawl(web, tmp_path, ["robots-cart.test"], db=str(db), miss_threshold=1)
    assert first.items["robots-cart.test"]["pages_failed"] == 0
    site = web.sites["robots-cart.test"]
    plain = Route(200, HTML, b'<html><body><a href="/cart">Cart</a> <a href="/pricing">Pricing</a></body></html>')
    web.sites["robots-cart.test"] = replace(site, routes={**site.routes, "/": plain})
    try:
        crawl(web, tmp_path, ["robots-cart.test"], db=str(db), miss_threshold=1)
    finally:
        web.sites["robots-cart.test"] = site
    (hugo,) = rows(db, "select status from detections where domain = 'robots-cart.test' and technology = 'Hugo'")
    assert hugo["status"] == "removed"
    assert [r["kind"] for r in rows(db, "select kind from changes where technology = 'Hugo' order by id")] == [
        "added", "removed"]


# ------------------------------------------------------------------ failures after fetching


def crawl_cli(web: Web, tmp: Path, domains: list[str], *args: str) -> subprocess.Popen[str]:
    listing = tmp / "domains.txt"
    listing.write_text("\n".join(domains) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "detector", "crawl", str(listing), "--db", str(tmp / "c.db"), "--proxy", web.url, "--no-dns",
         "--retries", "0", "--timeout", "5", "--pages", "0", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def engine_workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"detector.crawl.worker" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_engine_failure_still_gives_every_domain_its_row(web: Web, tmp_path: Path) -> None:
    """The engine worker dies (killed, as the OOM killer would) before any site is detected."""
    domains = [f"engine{n}.test" for n in range(6)]
    start = len(web.served)
    proc = crawl_cli(web, tmp_path, domains, "--workers", "1", "--concurrency", "2", "--json")
    try:
        # Requests start only once the engines are loaded; every homepage takes a second.
        wait_for(lambda: len(web.served) > start, 60, "the first request")
        (worker,) = engine_workers(proc.pid)
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    scans = rows(tmp_path / "c.db", "select * from scans")
    assert sorted(s["domain"] for s in scans) == domains  # exactly one row each
    for s in scans:
        assert (s["status"], s["error_kind"], s["pages"], s["counted"]) == ("error", "other", 1, 0), s
        assert s["error_message"].startswith("detection failed on this site's 1 page(s): ")
        assert "engine worker" in s["error_message"]
    assert rows(tmp_path / "c.db", "select count(*) n from detections") == [{"n": 0}]
    assert json.loads(out)["failed_by_kind"] == {"other": 6}


def test_crawl_keeps_fetching_while_the_database_is_locked(web: Web, tmp_path: Path) -> None:
    """Another process holds a write lock for 3 s: downloads go on, and every row lands after."""
    domains = [f"steady{n}.test" for n in range(40)]
    db = tmp_path / "c.db"
    start = len(web.served)
    proc = crawl_cli(web, tmp_path, domains, "--workers", "0", "--concurrency", "4", "--per-site", "1",
                     "--ignore-robots")
    held: list[float] = []
    try:
        wait_for(lambda: len(web.served) > start, 60, "the first request")
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.append(time.monotonic())
        time.sleep(3)
        during = sum(1 for t, *_ in web.served[start:] if held[0] + 0.8 <= t <= held[0] + 3)
        conn.execute("COMMIT")
        conn.close()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # 4 homepages in flight, 0.3 s each: about 29 requests in 2.2 s; a reactor stuck on SQLite serves none.
    assert during >= 10, during
    scans = rows(db, "select domain, status from scans")
    assert sorted(s["domain"] for s in scans) == sorted(domains)
    assert {s["status"] for s in scans} == {"ok"}
    assert "Crawled 40 domains in" in out and "40 ok, 0 failed" in out


def test_a_database_that_refuses_writes_fails_the_crawl(web: Web, tmp_path: Path) -> None:
    """SQLite refusing a batch ends the crawl at once with the reason, exit 1, run marked failed."""
    db = tmp_path / "c.db"
    from detector.store.store import open_database

    database = open_database(db)
    database.execute("CREATE TRIGGER refuse BEFORE INSERT ON scans WHEN NEW.domain = 'steady3.test' "
                     "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    database.close()
    proc = crawl_cli(web, tmp_path, [f"steady{n}.test" for n in range(8)], "--workers", "0", "--ignore-robots")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert f"Error: the crawl failed: scans could not be written to {db}: cannot write to the database " \
           "(disk says no)" in err
    assert [r["status"] for r in rows(db, "select status from runs")] == ["failed"]


def test_a_long_lock_holds_back_the_crawl_not_memory(web: Web, tmp_path: Path) -> None:
    """With small batches and a backlog of one, a locked database soon stops new fetches (items
    wait for the writer, the downloader for the items) instead of piling scans up in memory."""
    domains = [f"quick{n}.test" for n in range(60)]
    listing = tmp_path / "domains.txt"
    listing.write_text("\n".join(domains) + "\n", encoding="utf-8")
    db = tmp_path / "c.db"
    from detector.store.store import open_database

    open_database(db).close()
    opts = {"inputs": [str(listing)], "db": str(db), "proxy": web.url, "workers": 0, "retries": 0, "pages": 0,
            "concurrency": 4, "per_site": 1, "ignore_robots": True, "detect": False,
            "extra": {"DETECTOR_COMMIT_EVERY": 2, "DETECTOR_WRITE_BACKLOG": 1, "DETECTOR_SCHEMES": ["http"],
                      "SCRAPER_SLOT_MAX_ACTIVE_SIZE": 4096}}
    conn = sqlite3.connect(db, isolation_level=None)
    start = len(web.served)
    proc = subprocess.Popen([sys.executable, "-c", CRAWL, json.dumps(opts)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: len(web.served) > start, 60, "the first request")
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(3)
        during = len(web.served) - start
        conn.execute("COMMIT")
        conn.close()
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # Unchecked, the 60 sites take about a second; held back, a batch writing, one buffered,
    # four responses in the scraper and four downloads in flight are about all that get through.
    assert during <= 25, during
    assert sorted(r["domain"] for r in rows(db, "select domain from scans")) == sorted(domains)


def test_robots_per_host_with_a_small_cache(web: Web, tmp_path: Path) -> None:
    """Each host has its own robots.txt (www. forbids what the bare name allows), and a robots
    cache smaller than the crawl forgets old origins without forgetting any rule that applies."""
    domains = ["www-robots.test", "robots-http.test", "robots.test", *(f"steady{n}.test" for n in range(24))]
    done = crawl(web, tmp_path, domains, concurrency=8, extra={"DETECTOR_ROBOTS_CACHE": 16})
    scan = scan_of(done.db, "www-robots.test")
    assert (scan["status"], scan["error_kind"]) == ("error", "robots")
    assert scan["error_message"] == "https://www.www-robots.test/robots.txt forbids fetching https://www.www-robots.test/"
    assert scan_of(done.db, "robots-http.test")["error_kind"] == "robots"
    assert scan_of(done.db, "robots.test")["error_kind"] == "robots"
    assert {scan_of(done.db, f"steady{n}.test")["status"] for n in range(24)} == {"ok"}
