"""Refresh against live local sites: crawl, change the sites, refresh, check the history.

Every run is ``python -m detector`` in a subprocess (the reactor starts once per process)
through a local virtual-host proxy whose sites the tests edit between runs.  The signature
set is a handful of real signature files, copied, so each run starts in a second or two.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.demo.vhosts import Route, Site, VirtualHostProxy
from detector.store.lock import database_lock
from tests.servers import ROOT, Run, rows, run_detector

SIGNATURE_FILES = ["cms/wordpress", "static-site-generator/hugo", "javascript-libraries/jquery",
                   "payment-processors/stripe", "programming-languages/php", "databases/mysql"]


def wordpress(version: str) -> str:
    return f'<meta name="generator" content="WordPress {version}">'


STRIPE = '<script src="https://js.stripe.com/v3/"></script>'
JQUERY = '<script src="/js/jquery.min.js"></script>'
HUGO = '<meta name="generator" content="Hugo 0.120.0">'


def page(*head: str, body: str = "<p>Welcome</p>", delay: float = 0.0, status: int = 200) -> Route:
    html = f"<!doctype html><html><head>{''.join(head)}</head><body>{body}</body></html>"
    return Route(status, (("Content-Type", "text/html; charset=utf-8"),), html.encode(), delay)


class Web:
    """Local sites the test edits while the proxy serves them (plain http; https is refused)."""

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.proxy = VirtualHostProxy(lambda host: self.sites.get(host)).start()

    def put(self, host: str, routes: dict[str, Route]) -> None:
        self.sites[host] = Site(host, {"/robots.txt": Route(404), **routes}, https=False)

    def take_down(self, host: str) -> None:
        del self.sites[host]


@pytest.fixture()
def web() -> Iterator[Web]:
    w = Web()
    yield w
    w.proxy.stop()


@pytest.fixture(scope="module")
def signatures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("signatures")
    for name in ("categories.yaml", "groups.yaml"):
        shutil.copy(ROOT / "signatures" / name, out / name)
    for name in SIGNATURE_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "signatures" / f"{name}.yaml", out / f"{name}.yaml")
    return out


def options(web: Web, db: Path, signatures: Path) -> list[str]:
    return ["--db", str(db), "--proxy", web.proxy.url, "--no-dns", "--workers", "0", "--retries", "0", "--timeout", "3",
            "--pages", "0", "--signatures", str(signatures)]


def detections(db: Path, domain: str) -> dict[str, tuple[str, str | None, int]]:
    return {r["technology"]: (r["status"], r["version"], r["miss_count"])
            for r in rows(db, "select * from detections where domain = ?", domain)}


def history(db: Path, domain: str) -> list[tuple[str, str, str | None, str | None]]:
    return [(r["technology"], r["kind"], r["old_version"], r["new_version"])
            for r in rows(db, "select * from changes where domain = ? order by id", domain)]


def ok(run: Run) -> Run:
    assert run.code == 0, run.err + run.out
    return run


# ---------------------------------------------------------------------------- lifecycle


def test_lifecycle_crawl_change_refresh(web: Web, signatures: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    opts = options(web, db, signatures)
    web.put("shop.test", {"/": page(wordpress("6.4.2"), STRIPE, JQUERY)})
    web.put("blog.test", {"/": page(HUGO)})
    (tmp_path / "in.txt").write_text("shop.test\nblog.test\n", encoding="utf-8")
    first = ok(run_detector(["crawl", str(tmp_path / "in.txt"), *opts, "--json"])).json()
    assert first["changes"] == {"added": 6, "removed": 0, "version_changed": 0}  # type: ignore[index]
    first_seen = rows(db, "select first_seen from detections where technology = 'Stripe'")[0]["first_seen"]

    # The shop drops Stripe and upgrades WordPress; the blog stops answering.
    web.put("shop.test", {"/": page(wordpress("6.5"), JQUERY)})
    web.take_down("blog.test")
    second = ok(run_detector(["refresh", "--older-than", "0", *opts, "--json"])).json()
    assert second["changes"] == {"added": 0, "removed": 0, "version_changed": 1}  # type: ignore[index]
    assert detections(db, "shop.test")["Stripe"] == ("active", None, 1)  # one miss is not a removal
    assert detections(db, "shop.test")["WordPress"] == ("active", "6.5", 0)
    assert detections(db, "blog.test") == {"Hugo": ("active", "0.120.0", 0)}
    (blog_scan,) = rows(db, "select * from scans where domain = 'blog.test' and run_id = ?", second["run_id"])  # type: ignore[index]
    assert (blog_scan["status"], blog_scan["error_kind"]) == ("error", "dns")

    # A plain crawl of a known domain records history too: the second miss removes Stripe.
    ok(run_detector(["crawl", "-", *opts], stdin="shop.test\n"))
    assert detections(db, "shop.test")["Stripe"][0] == "removed"
    # The blog, still down for a second refresh, keeps everything.
    ok(run_detector(["refresh", "--older-than", "0", "--domains", "-", *opts], stdin="blog.test\n"))
    assert detections(db, "blog.test") == {"Hugo": ("active", "0.120.0", 0)}
    assert history(db, "blog.test") == [("Hugo", "added", None, "0.120.0")]

    # Both come back; Stripe is added again with its first_seen and history kept.
    web.put("shop.test", {"/": page(wordpress("6.5"), STRIPE, JQUERY)})
    web.put("blog.test", {"/": page(HUGO)})
    third = ok(run_detector(["refresh", "--older-than", "0", *opts]))
    assert "Refreshed 2 domains in" in third.out and "2 ok, 0 failed" in third.out
    assert "Changes: 1 added, 0 removed, 0 version changed" in third.out
    assert third.err == "Refreshing 2 domain(s) (--older-than 0: all chosen).\n"
    assert detections(db, "shop.test")["Stripe"] == ("active", None, 0)
    assert rows(db, "select first_seen from detections where technology = 'Stripe'")[0]["first_seen"] == first_seen
    assert history(db, "shop.test") == [
        ("MySQL", "added", None, None), ("PHP", "added", None, None), ("Stripe", "added", None, None),
        ("WordPress", "added", None, "6.4.2"), ("jQuery", "added", None, None),
        ("WordPress", "version_changed", "6.4.2", "6.5"),
        ("Stripe", "removed", None, None),
        ("Stripe", "added", None, None),
    ]
    assert history(db, "blog.test") == [("Hugo", "added", None, "0.120.0")]
    assert rows(db, "select count(*) n from scans")[0]["n"] == 2 + 2 + 1 + 1 + 2

    # Nothing stale: says so, exits 0, scans nothing.
    idle = ok(run_detector(["refresh", "--older-than", "7d", *opts]))
    assert idle.out == "Nothing to refresh: all 2 domain(s) had a successful scan within the last 7d.\n"
    assert rows(db, "select count(*) n from scans")[0]["n"] == 8

    # Reading the history back.
    removed = CliRunner().invoke(cli, ["changes", "--db", str(db), "--kind", "removed", "--csv"])
    assert removed.exit_code == 0, removed.output
    (row,) = list(csv.DictReader(io.StringIO(removed.output)))
    assert (row["domain"], row["technology"], row["kind"]) == ("shop.test", "Stripe", "removed")
    stripe = CliRunner().invoke(cli, ["changes", "--db", str(db), "--technology", "stripe", "--nl"])
    assert [json.loads(line)["kind"] for line in stripe.output.splitlines()] == ["added", "removed", "added"]
    text = CliRunner().invoke(cli, ["changes", "--db", str(db), "--domain", "shop.test", "--since", "1h"])
    lines = text.output.splitlines()
    assert lines[-1] == "8 change(s) in the last 1h."
    assert any("shop.test  ~ version_changed  WordPress  6.4.2 -> 6.5" in line for line in lines)
    assert any("shop.test  - removed          Stripe" in line for line in lines)

    status = json.loads(CliRunner().invoke(cli, ["status", "--db", str(db), "--json"]).output)
    assert status["last_refresh"]["status"] == "done"
    assert status["last_refresh"]["changes"] == {"added": 1, "removed": 0, "version_changed": 0}
    assert status["last_ok_scan_age"]["< 1d"] == 2 and status["failing_domains"] == 0
    assert [r["command"] for r in rows(db, "select command from runs order by started_at, rowid")] == [
        "crawl", "refresh", "crawl", "refresh", "refresh"]


def test_partial_scan_never_removes(web: Web, signatures: Path, tmp_path: Path) -> None:
    """Stripe lives on /pricing: while that page times out or fails with 5xx, it stays; a 404 counts."""
    db = tmp_path / "p.db"
    opts = [*options(web, db, signatures), "--pages", "1", "--miss-threshold", "1", "--timeout", "1"]
    home = page(wordpress("6.4.2"), body='<a href="/pricing">Pricing</a>')
    web.put("shop.test", {"/": home, "/pricing": page(STRIPE)})
    ok(run_detector(["crawl", "-", *opts], stdin="shop.test\n"))
    assert detections(db, "shop.test")["Stripe"] == ("active", None, 0)
    for failing in (page(status=503), page(STRIPE, delay=3)):
        web.put("shop.test", {"/": home, "/pricing": failing})
        ok(run_detector(["refresh", "--older-than", "0", *opts]))
        assert detections(db, "shop.test")["Stripe"] == ("active", None, 0)
    scans = rows(db, "select pages, pages_failed, counted from scans order by id")
    assert scans == [{"pages": 2, "pages_failed": 0, "counted": 1},
                     {"pages": 1, "pages_failed": 1, "counted": 0},
                     {"pages": 1, "pages_failed": 1, "counted": 0}]
    web.put("shop.test", {"/": home})  # /pricing is gone for good (404): that scan is complete
    ok(run_detector(["refresh", "--older-than", "0", *opts]))
    assert detections(db, "shop.test")["Stripe"][0] == "removed"


def test_limit_and_domains_choose_the_longest_waiting(web: Web, signatures: Path, tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    opts = options(web, db, signatures)
    for host in ("a.test", "b.test", "c.test"):
        web.put(host, {"/": page(HUGO)})
    ok(run_detector(["crawl", "-", *opts], stdin="a.test\nb.test\nc.test\n"))
    conn = sqlite3.connect(db)
    with conn:  # pretend the scans were made days apart: c longest ago, then a, then b
        for host, day in (("c.test", "01"), ("a.test", "02"), ("b.test", "03")):
            conn.execute("update domains set last_ok_at = ? where domain = ?", (f"2026-01-{day}T00:00:00Z", host))
    conn.close()
    run = ok(run_detector(["refresh", "--older-than", "7d", "--limit", "2", *opts, "--json"]))
    summary = run.json()
    assert summary["stale_left"] == 1  # type: ignore[index]
    refreshed = {r["domain"] for r in rows(db, "select domain from scans where run_id = ?", summary["run_id"])}  # type: ignore[index]
    assert refreshed == {"c.test", "a.test"}
    # --domains: only those listed; one never seen before is stale by definition.
    web.put("new.test", {"/": page(HUGO)})
    run = ok(run_detector(["refresh", "--domains", "-", *opts, "--json"], stdin="b.test\nwww.new.test\nfresh.test\na.test\n"))
    refreshed = {r["domain"] for r in rows(db, "select domain from scans where run_id = ?", run.json()["run_id"])}  # type: ignore[index]
    assert refreshed == {"b.test", "new.test", "fresh.test"}  # a.test was refreshed just now


LOADER = "<script>var s=document.createElement('script'); s.src='/js/jquery.min.js'; document.head.appendChild(s);</script>"


@pytest.mark.parametrize("workers", ["0", "1"])
def test_compat_mode_reaches_the_engine_and_is_recorded(web: Web, signatures: Path, tmp_path: Path,
                                                        workers: str) -> None:
    """--compat wappalyzer on crawl and refresh: no script_loader source (a jQuery loader
    snippet is not seen), in the crawler process and in engine workers alike."""
    db = tmp_path / "m.db"
    opts = [*options(web, db, signatures), "--workers", workers]
    web.put("loader.test", {"/": page(LOADER)})
    first = ok(run_detector(["crawl", "-", *opts, "--compat", "wappalyzer", "--json"], stdin="loader.test\n")).json()
    assert "jQuery" not in detections(db, "loader.test")
    second = ok(run_detector(["refresh", "--older-than", "0", *opts, "--json"])).json()
    assert detections(db, "loader.test")["jQuery"][0] == "active"
    modes = {r["id"]: json.loads(r["options"])["engine_mode"] for r in rows(db, "select id, options from runs")}
    assert modes == {first["run_id"]: "wappalyzer", second["run_id"]: "detector"}  # type: ignore[index]
    bad = run_detector(["refresh", "--db", str(db), "--compat", "bogus"])
    assert bad.code == 2 and "'bogus' is not 'wappalyzer'" in bad.err


# ---------------------------------------------------------------------------- lock


def test_a_held_lock_refuses_with_75(web: Web, signatures: Path, tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    opts = options(web, db, signatures)
    web.put("a.test", {"/": page(HUGO)})
    ok(run_detector(["crawl", "-", *opts], stdin="a.test\n"))
    with database_lock(db, "refresh"):
        for args in (["refresh", "--older-than", "0", *opts], ["crawl", "-", *opts]):
            run = run_detector(args, stdin="a.test\n")
            assert run.code == 75, run.err
            assert f"Error: {db} is in use by another run (pid {os.getpid()}, refresh since " in run.err
            assert f"lock {db}.lock). Nothing was done;" in run.err
    assert rows(db, "select count(*) n from scans")[0]["n"] == 1
    ok(run_detector(["refresh", "--older-than", "0", *opts]))


def test_two_refreshes_at_once_one_refuses(web: Web, signatures: Path, tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    opts = options(web, db, signatures)
    for n in range(6):
        web.put(f"s{n}.test", {"/": page(HUGO)})
    ok(run_detector(["crawl", "-", *opts], stdin="".join(f"s{n}.test\n" for n in range(6))))
    for n in range(6):
        web.put(f"s{n}.test", {"/": page(HUGO, delay=1.0)})
    first = start_detector(["refresh", "--older-than", "0", "--concurrency", "2", *opts])
    try:
        wait_for(lambda: rows(db, "select count(*) n from runs where status = 'running'")[0]["n"] == 1, 30)
        second = run_detector(["refresh", "--older-than", "0", *opts])
        assert second.code == 75, second.err
        assert "is in use by another run" in second.err and "refresh since" in second.err
        assert first.wait(60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert rows(db, "select status, domains_ok from runs where command = 'refresh'") == [
        {"status": "done", "domains_ok": 6}]


def start_detector(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "detector", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except sqlite3.OperationalError:
            pass  # the table may not exist yet
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# ---------------------------------------------------------------------------- kill -9


def snapshot(db: Path) -> dict[str, set[Any]]:
    return {
        "scans": {tuple(r.values()) for r in rows(db, "select id, run_id, domain, status from scans")},
        "changes": {tuple(r.values()) for r in rows(db, "select id, domain, technology, kind, scan_id from changes")},
        "detections": {(r["domain"], r["technology"]) for r in rows(db, "select domain, technology from detections")},
    }


def check_consistent(db: Path, before: dict[str, set[Any]]) -> dict[str, set[Any]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    now = snapshot(db)
    for table, old_rows in before.items():  # append-only tables lose nothing
        assert old_rows <= now[table], f"rows lost from {table}"
    assert not rows(db, "select run_id, domain, count(*) n from scans group by run_id, domain having n > 1")
    assert not rows(db, "select scan_id, technology, count(*) n from changes where scan_id is not null "
                        "group by scan_id, technology having n > 1")
    # Each domain row agrees with its scans (they are written in one transaction).
    assert not rows(db, "select d.domain from domains d where d.last_ok_at is not "
                        "(select max(finished_at) from scans s where s.domain = d.domain and s.status = 'ok')")
    # History and state agree: the last event of each technology matches its status.
    for det in rows(db, "select domain, technology, status from detections"):
        kinds = [r["kind"] for r in rows(db, "select kind from changes where domain = ? and technology = ? "
                                             "and kind != 'version_changed' order by id", det["domain"], det["technology"])]
        assert kinds and kinds[0] == "added"
        assert all(a != b for a, b in itertools.pairwise(kinds)), kinds  # alternates added/removed
        assert kinds[-1] == ("added" if det["status"] == "active" else "removed")
    return now


def test_kill_9_at_random_points_then_rerun(web: Web, signatures: Path, tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    rnd = random.Random(seed)
    db = tmp_path / "kill.db"
    opts = [*options(web, db, signatures), "--miss-threshold", "1", "--concurrency", "4"]
    # 48 slow sites, 4 at a time: a full refresh takes ~12 s, and each killed run gets through
    # at most ~10 of them, so some are still stale for the final run whatever the seed.
    hosts = [f"site{n:02d}.test" for n in range(48)]
    for host in hosts:
        web.put(host, {"/": page(wordpress("6.4.2"), STRIPE, JQUERY)})
    ok(run_detector(["crawl", "-", *opts], stdin="\n".join(hosts) + "\n"))
    # A week passes; every site upgrades WordPress, half drop Stripe, and they answer slowly.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update domains set last_ok_at = '2026-01-01T00:00:00Z'")
        conn.execute("update scans set finished_at = '2026-01-01T00:00:00Z'")
    conn.close()
    for n, host in enumerate(hosts):
        head = [wordpress("6.5"), JQUERY] + ([STRIPE] if n % 2 else [])
        web.put(host, {"/": page(*head, delay=1.0)})
    before = snapshot(db)
    kills = 0
    for attempt in range(5):
        scans_before = len(before["scans"])
        proc = start_detector(["refresh", "--older-than", "1d", *opts])
        try:
            if attempt == 0:
                time.sleep(rnd.uniform(0.0, 3.0))  # anywhere: imports, migrations, lock, start
            else:  # mid-crawl: once this run has committed a scan
                def committed(p: subprocess.Popen[bytes] = proc, n: int = scans_before) -> bool:
                    return rows(db, "select count(*) n from scans")[0]["n"] > n or p.poll() is not None

                wait_for(committed, 60)
                time.sleep(rnd.uniform(0.0, 1.0))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(10)
        before = check_consistent(db, before)
    assert kills >= 3, f"the runs ended before they could be killed (seed {seed})"
    # The lock died with its holders: the next run goes ahead and takes what is still stale.
    stale = rows(db, "select count(*) n from domains where last_ok_at <= '2026-01-01T00:00:00Z'")[0]["n"]
    assert 0 < stale < len(hosts), f"seed {seed}: killed runs should have done some, not all"
    final = ok(run_detector(["refresh", "--older-than", "1d", *opts, "--json"])).json()
    assert final["domains_ok"] == stale, f"seed {seed}"  # type: ignore[index]
    check_consistent(db, before)
    assert ok(run_detector(["refresh", "--older-than", "1d", *opts])).out.startswith("Nothing to refresh")
    for n, host in enumerate(hosts):
        state = detections(db, host)
        assert state["WordPress"][:2] == ("active", "6.5"), (host, seed)
        assert state["Stripe"][0] == ("active" if n % 2 else "removed"), (host, seed)
        assert [k for t, k, _, _ in history(db, host) if t in ("WordPress", "Stripe")] == (
            ["added", "added", "version_changed"] + ([] if n % 2 else ["removed"])), (host, seed)
    # Killed runs that got as far as recording themselves are marked interrupted by the next run.
    runs = [r["status"] for r in rows(db, "select status from runs where command = 'refresh' order by started_at, rowid")]
    assert runs[-1] == "done" and set(runs[:-1]) <= {"interrupted"} and len(runs) - 1 <= kills, (runs, seed)


# ---------------------------------------------------------------------------- CLI without crawling

README = ROOT / "README.md"


@pytest.mark.parametrize("command", ["refresh", "changes", "status"])
def test_help_and_readme(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "Exit status" in result.output
    text = README.read_text(encoding="utf-8")
    assert f"detector {command}" in text
    for option in set(re.findall(r"(--[a-z][a-z-]+)", result.output)) - {"--help"}:
        assert option in text, f"README does not mention {command} option {option}"


def test_refresh_takes_every_crawl_option() -> None:
    def options_of(command: str) -> set[str]:
        return {o for p in cli.commands[command].params if isinstance(p, click.Option) for o in p.opts}

    assert options_of("crawl") <= options_of("refresh")
    assert "exits with status 75" in README.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["refresh", "--older-than", "7x"], 2, '"7x" is not a duration; write a number and a unit: 30m, 12h, 7d or 2w'),
        (["refresh", "--older-than", "7d", "--limit", "0"], 2, "Invalid value for '--limit'"),
        (["refresh", "--db", "{tmp}/none.db"], 1, "none.db: no such database. Crawl a domain list into it first"),
        (["refresh", "--db", "{db}", "--domains", "{tmp}/nope.txt"], 66, "nope.txt: no such file"),
        (["refresh", "--db", "{db}", "--proxy", "proxy:3128"], 2, "is not a proxy URL"),
        (["changes", "--db", "{tmp}/none.db"], 1, "none.db: no such database"),
        (["changes", "--db", "{db}", "--json", "--csv"], 2, "Choose one of --json, --nl and --csv."),
        (["changes", "--db", "{db}", "--kind", "renamed"], 2, "'renamed' is not one of 'added', 'removed', 'version_changed'"),
        (["changes", "--db", "{db}", "--since", "a week"], 2, '"a week" is not a duration'),
        (["status", "--db", "{tmp}/none.db"], 1, "none.db: no such database"),
    ],
    ids=["bad-age", "bad-limit", "no-db", "no-domains-file", "bad-proxy", "changes-no-db", "two-formats",
         "bad-kind", "bad-since", "status-no-db"],
)
def test_usage_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    db = tmp_path / "x.db"
    from detector.store.store import open_database

    open_database(db).close()
    argv = [a.format(tmp=tmp_path, db=db) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "none.db").exists()  # reading commands never create a database


def test_changes_and_status_on_a_recorded_history(tmp_path: Path) -> None:
    from detector.engine.verdict import SiteDetection
    from detector.store.scans import ScanResult, record_scans, utc_now
    from detector.store.store import open_database

    db = open_database(tmp_path / "h.db")

    def scan(domain: str, at: str, *techs: tuple[str, str | None], status: str = "ok") -> ScanResult:
        return ScanResult(domain, "r-" + at[:10], at, at, status, None if status == "ok" else "timeout",
                          pages=1, detections=tuple(SiteDetection(t, v, 100, (), ()) for t, v in techs))

    record_scans(db, [scan("old.test", "2020-01-01T00:00:00Z", ("Drupal", "7"))])
    record_scans(db, [scan("shop.test", "2020-01-01T00:00:00Z", ("Magento", "1.9"))])
    now = utc_now()
    record_scans(db, [scan("shop.test", now, ("Magento", "2.4")), scan("down.test", now, status="error")])
    db.close()
    path = str(tmp_path / "h.db")
    table = CliRunner().invoke(cli, ["changes", "--db", path])
    assert table.output == f"{now}  shop.test  ~ version_changed  Magento  1.9 -> 2.4\n1 change(s) in the last 30d.\n"
    every = json.loads(CliRunner().invoke(cli, ["changes", "--db", path, "--since", "52w", "--json"]).output)
    assert [c["kind"] for c in every] == ["version_changed"]  # the 2020 events are older than a year
    old = json.loads(CliRunner().invoke(cli, ["changes", "--db", path, "--since", "1000w", "--json"]).output)
    assert [(c["domain"], c["kind"]) for c in old] == [
        ("shop.test", "version_changed"), ("old.test", "added"), ("shop.test", "added")]
    unknown = CliRunner().invoke(cli, ["changes", "--db", path, "--technology", "Magent"])
    assert unknown.exit_code == 0
    assert f'note: no technology is named "Magent" in {path} or its signature library. Did you mean Magento?' in unknown.output
    report = json.loads(CliRunner().invoke(cli, ["status", "--db", path, "--json", "--stale-after", "30d"]).output)
    assert report["database_domains"] == 3
    assert report["last_ok_scan_age"] == {"< 1d": 1, "1-7d": 0, "7-30d": 0, "30-90d": 0, "> 90d": 1, "never": 1}
    assert report["failing_by_kind"] == {"timeout": 1}
    assert report["oldest_ok_scan"] == {"domain": "old.test", "at": "2020-01-01T00:00:00Z"}
    assert report["detections"]["stale"] == 1
    (stale,) = report["detections"]["stale_examples"]
    assert (stale["domain"], stale["technology"], stale["stale"]) == ("old.test", "Drupal", True)
    assert report["last_refresh"] is None and report["running"] is None
    text = CliRunner().invoke(cli, ["status", "--db", path]).output
    assert "Failing domains (latest scan failed): 1 (timeout 1)" in text
    assert "Detections: 2 active, 0 removed; 1 stale (last seen over 30d ago)" in text
    assert "  stale  old.test  Drupal  last seen 2020-01-01T00:00:00Z (" in text
    with database_lock(path, "refresh"):
        running = json.loads(CliRunner().invoke(cli, ["status", "--db", path, "--json"]).output)["running"]
        assert running.startswith(f"pid {os.getpid()}, refresh since ")
        assert f"running now: pid {os.getpid()}, refresh since" in CliRunner().invoke(cli, ["status", "--db", path]).output


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_sigterm_and_kill_9_with_engine_workers(web: Web, signatures: Path, tmp_path: Path) -> None:
    """A stopped run is recorded as interrupted; a killed one leaves no worker and no lock behind."""
    db = tmp_path / "w.db"
    opts = [*options(web, db, signatures), "--workers", "1", "--concurrency", "4"]
    hosts = [f"w{n:02d}.test" for n in range(16)]
    for host in hosts:
        web.put(host, {"/": page(wordpress("6.4.2"), STRIPE)})
    ok(run_detector(["crawl", "-", *opts], stdin="\n".join(hosts) + "\n"))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update domains set last_ok_at = '2026-01-01T00:00:00Z'")
        conn.execute("update scans set finished_at = '2026-01-01T00:00:00Z'")
    conn.close()
    for host in hosts:
        web.put(host, {"/": page(wordpress("6.4.2"), STRIPE, delay=1.0)})

    def started_scanning(proc: subprocess.Popen[bytes], before: int) -> None:
        wait_for(lambda: rows(db, "select count(*) n from scans")[0]["n"] > before or proc.poll() is not None, 60)
        assert proc.poll() is None, "the run ended before it could be stopped"

    # SIGTERM (systemctl stop, Ctrl-C): Scrapy stops gracefully.
    proc = start_detector(["refresh", "--older-than", "1d", *opts])
    started_scanning(proc, len(hosts))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    (run,) = rows(db, "select status, domains_ok from runs where command = 'refresh'")
    assert run["status"] == "interrupted" and 0 < run["domains_ok"] < len(hosts)
    assert {r["status"] for r in rows(db, "select status from detections")} == {"active"}
    stale = rows(db, "select count(*) n from domains where last_ok_at <= '2026-01-01T00:00:00Z'")[0]["n"]
    assert stale == len(hosts) - run["domains_ok"]

    # kill -9: the engine worker sees its stdin close and exits; the kernel drops the lock.
    proc = start_detector(["refresh", "--older-than", "1d", *opts])
    started_scanning(proc, len(rows(db, "select id from scans")))
    workers = children(proc.pid)
    assert workers, "expected an engine worker process"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in workers), 15)
    final = ok(run_detector(["refresh", "--older-than", "1d", *opts, "--json"])).json()
    assert final["domains_ok"] > 0  # type: ignore[index]
    assert ok(run_detector(["refresh", "--older-than", "1d", *opts])).out.startswith("Nothing to refresh")
    assert [r["status"] for r in rows(db, "select status from runs where command = 'refresh' order by started_at, rowid")] == [
        "interrupted", "interrupted", "done"]


def test_readme_cron_line_and_systemd_units_are_the_ones_tried(tmp_path: Path) -> None:
    """The documented schedule runs as written (on a database of this test) and the units verify."""
    text = README.read_text(encoding="utf-8")
    (cron,) = re.findall(r"```cron\n(.*?)\n```", text, flags=re.DOTALL)
    units = re.findall(r"```ini\n(.*?)```", text, flags=re.DOTALL)
    service = next(u for u in units if "[Service]" in u)
    timer = next(u for u in units if "[Timer]" in u)
    minute, hour, *_, command = cron.split(None, 5)
    assert (minute, hour) == ("30", "2")
    exec_start = re.search(r"^ExecStart=(.*)$", service, flags=re.MULTILINE)
    assert exec_start is not None
    assert command.split(">>")[0].split() == exec_start.group(1).split()  # the same command
    binary, *args = exec_start.group(1).split()
    db = tmp_path / "detector.db"
    from detector.store.store import open_database

    open_database(db).close()
    result = CliRunner().invoke(cli, [a.replace("/var/lib/detector/detector.db", str(db)) for a in args])
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing to refresh: all 0 domain(s) had a successful scan within the last 7d.\n"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    fake = tmp_path / "detector"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    (tmp_path / "detector-refresh.service").write_text(service.replace(binary, str(fake)))
    (tmp_path / "detector-refresh.timer").write_text(timer)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "detector-refresh.service"),
                           str(tmp_path / "detector-refresh.timer")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
