"""refresh reuses the network options the last crawl recorded; `scrapy crawl domains` records its
run like `detector crawl` and fails clearly on a missing input."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import detector.crawl.refresh
import detector.crawl.runner
from detector.crawl.refresh import reusable_options
from detector.crawl.runner import CrawlOptions, network_options
from detector.demo.vhosts import VirtualHostProxy
from tests.conftest import ROOT
from tests.servers import rows, run_detector, start_proxy


@pytest.fixture(scope="module")
def proxy() -> Iterator[VirtualHostProxy]:
    server = start_proxy()
    yield server
    server.stop()


@pytest.mark.parametrize("module", [detector.crawl.refresh, detector.crawl.runner], ids=["refresh", "runner"])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_the_network_options_are_marked_on_crawl_options() -> None:
    assert network_options() == ("pages", "concurrency", "per_site", "timeout", "retries", "max_size",
                                 "user_agent", "proxy", "ignore_robots", "dns", "resolver", "render",
                                 "render_concurrency", "render_timeout", "render_budget")


def test_given_options_win_over_recorded_ones() -> None:
    recorded = {"proxy": "http://127.0.0.1:1", "pages": 0, "timeout": 5.0, "user_agent": "ua/1", "db": "x.db",
                "future_option": "x"}  # an option this code does not know is ignored, not an error
    mine = CrawlOptions(inputs=(), proxy="http://127.0.0.1:2", timeout=15.0)
    assert reusable_options(mine, recorded, given={"proxy", "timeout"}) == {"pages": 0, "user_agent": "ua/1"}
    # From Python, without `given`: what differs from the defaults counts as given.
    assert reusable_options(mine, recorded) == {"pages": 0, "timeout": 5.0, "user_agent": "ua/1"}


def test_refresh_reuses_the_crawls_proxy_and_says_so(proxy: VirtualHostProxy, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("http-only.test\nwp-site.test\n", encoding="utf-8")
    db = tmp_path / "r.db"
    crawl = run_detector(["crawl", str(tmp_path / "in.txt"), "--db", str(db), "--proxy", proxy.url, "--no-dns", "--pages", "0",
                          "--timeout", "5", "--retries", "0", "--user-agent", "detector-test/1", "--workers", "0"])
    assert crawl.code == 0, crawl.err
    crawl_id = rows(db, "select id from runs where command = 'crawl'")[0]["id"]
    # No --proxy: without the crawl's, these .test names would go to the system resolver.
    again = run_detector(["refresh", "--db", str(db), "--older-than", "0", "--workers", "0", "--retries", "1"])
    assert again.code == 0, again.err
    assert (f"Reusing the network options of the last crawl ({crawl_id}): --pages 0 --timeout 5.0 "
            f"--user-agent detector-test/1 --proxy {proxy.url} --no-dns. Give an option again to change it.") in again.err
    assert rows(db, "select domain, status from scans where run_id != ? order by domain", crawl_id) == [
        {"domain": "http-only.test", "status": "ok"}, {"domain": "wp-site.test", "status": "ok"}]
    refreshed = json.loads(rows(db, "select options from runs where command = 'refresh'")[0]["options"])
    assert (refreshed["proxy"], refreshed["pages"], refreshed["user_agent"], refreshed["retries"]) == (
        proxy.url, 0, "detector-test/1", 1)  # --retries given again: its own value
    # Given again, an option is the refresh's own; --json reports what was reused.
    third = run_detector(["refresh", "--db", str(db), "--older-than", "0", "--workers", "0", "--pages", "1",
                          "--json"])
    assert third.code == 0, third.err
    summary = json.loads(third.out)
    assert summary["reused_options"] == {"timeout": 5.0, "retries": 0, "user_agent": "detector-test/1",
                                         "proxy": proxy.url, "dns": False}
    assert summary["reused_from"] == crawl_id
    assert "--pages" not in third.err


def scrapy_crawl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "scrapy", "crawl", "domains", *args, "-s", "LOG_LEVEL=WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_scrapy_crawl_records_its_run_like_detector_crawl(proxy: VirtualHostProxy, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("http-only.test\n", encoding="utf-8")
    db = tmp_path / "s.db"
    done = scrapy_crawl("-a", f"input={tmp_path / 'in.txt'}", "-s", f"DETECTOR_DB={db}",
                        "-s", f"DETECTOR_PROXY={proxy.url}", "-s", "DETECTOR_DETECT=False", "-s", "DETECTOR_PAGES=0",
                        "-s", "DETECTOR_DNS=False")
    assert done.returncode == 0, done.stderr
    (run,) = rows(db, "select * from runs")
    assert (run["command"], run["status"], run["domains_ok"], run["domains_failed"]) == ("crawl", "done", 1, 0)
    options = json.loads(run["options"])
    assert (options["proxy"], options["pages"], options["detect"], options["dns"]) == (proxy.url, 0, False, False)
    assert rows(db, "select run_id from scans") == [{"run_id": run["id"]}]
    status = run_detector(["status", "--db", str(db)])
    assert "Last crawl: never" not in status.out and f"Last crawl: {run['started_at']} (done)" in status.out
    # ... so a refresh after it reuses its proxy too.
    again = run_detector(["refresh", "--db", str(db), "--older-than", "0", "--workers", "0"])
    assert again.code == 0, again.err
    assert f"--proxy {proxy.url} --no-dns" in again.err
    assert [r["status"] for r in rows(db, "select status from scans order by id")] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-a", "input={tmp}/nope.txt"], 66, "Error: {tmp}/nope.txt: no such file. Check the path; nothing was read."),
        ([], 2, "Error: no input: give a domain list, e.g. scrapy crawl domains -a input=domains.txt"),
    ],
    ids=["missing-file", "no-input"],
)
def test_scrapy_crawl_fails_clearly_without_its_input(tmp_path: Path, args: list[str], code: int,
                                                      message: str) -> None:
    db = tmp_path / "s.db"
    done = scrapy_crawl(*[a.format(tmp=tmp_path) for a in args], "-s", f"DETECTOR_DB={db}",
                        "-s", "DETECTOR_PROXY=http://127.0.0.1:9")
    assert done.returncode == code
    assert done.stderr.strip() == message.format(tmp=tmp_path)
    assert not db.exists()
