"""Many machines: a real redis-server, real workers crawling 500 local sites, one writer.

Every process is a real ``detector`` subprocess; the sites are served by one virtual-host
proxy on 127.0.0.1 and the workers reach them with ``--proxy``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.crawl.distributed import RunQueue
from detector.crawl.ingest import enqueue, ingest
from detector.demo import demo_sites
from detector.demo.vhosts import Route, Site, VirtualHostProxy
from detector.store.scans import ScanResult
from detector.store.store import Store
from tests.servers import ROOT, RedisServer, free_port, rows, run_detector, tls_context

SITES = 500
#: Fetch options shared by the local crawl and the workers, so their databases can match.
FETCH = ["--retries", "0", "--ignore-robots", "--timeout", "10", "--workers", "0", "--concurrency", "24",
         "--pages", "1", "--no-dns", "--render", "off"]
#: The sites of the kill test (the first ones of the list): enough to kill things mid-run.
KILL_SITES = 200
SCAN_COLUMNS = ("domain, status, error_kind, http_status, final_url, pages, pages_failed, pages_offsite, "
                "pages_blocked, counted, signatures_version")
DETECTION_COLUMNS = "domain, technology, version, confidence, categories, status, first_seen IS NOT NULL"


def site_for(n: int, pages: list[bytes], extra: list[bytes]) -> Site | None:
    """Site number ``n``: a demo page with links to two more; every 41st is unknown (dns), every 37th a 500."""
    if n % 41 == 0:
        return None
    html = (("Content-Type", "text/html; charset=utf-8"), ("Server", "nginx"))
    if n % 37 == 0:
        return Site(f"n{n}.test", {"/": Route(503, html, b"<html>busy</html>")})
    nav = b'<nav><a href="/pricing">Pricing</a> <a href="/blog/">Blog</a></nav>'
    body = pages[n % len(pages)]
    body = body.replace(b"<body", nav + b"<body", 1) if b"<body" in body else nav + body
    return Site(f"n{n}.test", {"/": Route(200, html, body, delay=0.01)},
                not_found=Route(200, html, extra[n % len(extra)]))


@pytest.fixture(scope="module")
def web() -> Iterator[VirtualHostProxy]:
    pages: list[bytes] = []
    extra: list[bytes] = []
    for site in demo_sites().values():
        home = site.routes.get("/")
        if home is not None and home.status == 200 and home.body:
            pages.append(home.body)
            extra.extend(r.body for p, r in site.routes.items() if p != "/" and p.endswith(".html") and r.status == 200)
    built = {f"n{n}.test": site_for(n, pages, extra) for n in range(SITES)}
    # One certificate for every host: Scrapy does not verify certificates, it only needs TLS.
    proxy = VirtualHostProxy(lambda host: built.get(host), ssl_context=tls_context(["n0.test"])).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("list") / "domains.txt"
    path.write_text("".join(f"n{n}.test\n" for n in range(SITES)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def kill_listing(listing: Path) -> Path:
    path = listing.with_name("kill.txt")
    path.write_text("".join(f"n{n}.test\n" for n in range(KILL_SITES)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single(web: VirtualHostProxy, listing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sites crawled by one local process: what the distributed crawl must equal."""
    db = tmp_path_factory.mktemp("single") / "single.db"
    run = run_detector(["crawl", str(listing), "--db", str(db), "--proxy", web.url, *FETCH, "--json"], timeout=300)
    assert run.code == 0, run.err
    return db


def detector(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "detector", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_worker(redis_url: str, web: VirtualHostProxy, *extra: str) -> subprocess.Popen[str]:
    return detector("worker", "--redis", redis_url, "--proxy", web.url, "--drain", *FETCH, *extra)


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out, err


def crawled(err: str) -> int:
    """Domains a worker says it crawled."""
    line = next(ln for ln in err.splitlines() if ln.startswith("Worker done:"))
    return int(line.split()[2].replace(",", ""))


def assert_same_database(single: Path, dist: Path, sites: int = SITES) -> None:
    """Every domain scanned exactly once, and scans and detections equal to the local crawl's."""
    per_domain = rows(dist, "select domain, count(*) as n from scans group by domain")
    assert len(per_domain) == sites
    assert {r["n"] for r in per_domain} == {1}, [r for r in per_domain if r["n"] != 1][:5]
    domains = [r["domain"] for r in per_domain]
    among = f"where domain in ({', '.join('?' * len(domains))})"
    query = f"select {SCAN_COLUMNS} from scans {among} order by domain"
    assert rows(dist, query, *domains) == rows(single, query, *domains)
    query = f"select {DETECTION_COLUMNS} from detections {among} order by domain, technology"
    expected = rows(single, query, *domains)
    assert len(expected) > sites  # the sites run things: a comparison of empty tables proves nothing
    assert rows(dist, query, *domains) == expected
    (run,) = rows(dist, "select * from runs")
    assert (run["status"], run["domains_ok"] + run["domains_failed"]) == ("done", sites)


def counts(redis_url: str, prefix: str) -> dict[str, int]:
    queue = RunQueue.connect(redis_url, prefix=prefix)
    try:
        runs = [queue.counts(r) for r in queue.open_runs()]
    finally:
        queue.close()
    return {k: sum(r[k] for r in runs) for k in ("done", "written", "queued", "leased")}


def wait_until(redis_url: str, prefix: str, key: str, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while counts(redis_url, prefix)[key] < at_least:
        assert time.monotonic() < deadline, f"{key} never reached {at_least}: {counts(redis_url, prefix)}"
        time.sleep(0.02)


def invoke(*args: str) -> Any:
    """The CLI in this process (what needs no reactor: enqueueing, status, the writer)."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_two_workers_crawl_each_domain_once_like_one_process(
    web: VirtualHostProxy, redis_server: RedisServer, listing: Path, single: Path, tmp_path: Path
) -> None:
    db = tmp_path / "dist.db"
    url = redis_server.url
    prefix = ["--redis-prefix", "two"]
    queued = invoke("crawl", str(listing), "--redis", url, *prefix, "--db", str(db))
    assert f"Queued {SITES} domain(s) as run" in queued.output
    assert not db.exists()  # nothing touches the database until the writer runs
    workers = [start_worker(url, web, *prefix, "--id", f"w{i}") for i in (1, 2)]
    wait_until(url, "two", "done", 1)
    seen = invoke("status", "--redis", url, *prefix)
    assert "Workers seen in the last minute:" in seen.output
    writer = invoke("ingest", "--redis", url, *prefix, "--db", str(db), "--json")
    assert json.loads(writer.output)["written"] == SITES
    done = [crawled(finish(w)[1]) for w in workers]
    assert sum(done) == SITES and min(done) > 0, done  # both worked, and no domain was crawled twice
    assert_same_database(single, db)
    after = invoke("status", "--redis", url, *prefix, "--json")
    assert json.loads(after.output)["runs"] == []


def test_killed_worker_killed_writer_and_redis_restart_lose_nothing(
    web: VirtualHostProxy, redis_server: RedisServer, kill_listing: Path, single: Path, tmp_path: Path
) -> None:
    db = tmp_path / "dist.db"
    url = redis_server.url
    prefix = ["--redis-prefix", "kill"]
    writer = detector("crawl", str(kill_listing), "--redis", url, *prefix, "--db", str(db), "--wait", "--json")
    wait_until(url, "kill", "queued", 1)
    doomed = start_worker(url, web, *prefix, "--lease", "3", "--id", "doomed")
    wait_until(url, "kill", "done", 20)
    doomed.send_signal(signal.SIGKILL)  # mid-run, holding leases: they must expire and be crawled again
    doomed.communicate(timeout=30)
    # No worker runs now, so the run stays open however fast this machine is (a writer that
    # starts late would otherwise write the whole run in one batch and close it before it is
    # killed): the writer catches up on what is done, and is killed there.
    assert counts(url, "kill")["done"] < KILL_SITES
    wait_until(url, "kill", "written", 20)
    writer.send_signal(signal.SIGKILL)  # mid-batch maybe: what it read and did not acknowledge is replayed
    writer.communicate(timeout=30)
    survivor = start_worker(url, web, *prefix, "--lease", "3", "--id", "survivor")
    redis_server.stop()  # SIGTERM: Redis writes its data down, then starts again from it
    redis_server.start()
    invoke("ingest", "--redis", url, *prefix, "--db", str(db))
    assert crawled(finish(survivor)[1]) > 0
    assert_same_database(single, db, KILL_SITES)


def test_a_replayed_batch_and_a_late_duplicate_are_stored_once(redis_server: RedisServer, tmp_path: Path) -> None:
    queue = RunQueue.connect(redis_server.url, prefix="replay", lease=30)
    try:
        enqueue(queue, "r1", "crawl", ["a.test", "b.test", "c.test"], {"miss_threshold": 2})
        leased = queue.lease("w1", 10)
        assert sorted(d for _, d in leased) == ["a.test", "b.test", "c.test"]
        scans = [ScanResult(d, "r1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "ok", pages=1) for _, d in leased]
        assert queue.complete(scans) == 3
        assert queue.complete(scans[:1]) == 0  # a slow second worker finishing the same domain
        db = tmp_path / "replay.db"
        with Store.open(db, lock="ingest") as store:
            # A writer that committed its batch and died before acknowledging it.
            store.start_run("r1", "crawl", planned=3, options={})
            store.record_scans(scans)
            assert len(queue.read(["r1"], pending=False)) == 3
        with Store.open(db, lock="ingest") as store:
            report = ingest(queue, store)
        assert (report.written, report.skipped, report.finished) == (0, 3, ["r1"])
        assert rows(db, "select domain, count(*) as n from scans group by domain") == [
            {"domain": d, "n": 1} for d in ("a.test", "b.test", "c.test")]
        assert rows(db, "select status from runs") == [{"status": "done"}]
    finally:
        queue.close()


def test_an_expired_lease_is_requeued_then_abandoned(redis_server: RedisServer, tmp_path: Path) -> None:
    queue = RunQueue.connect(redis_server.url, prefix="expire", lease=0.2, max_attempts=2)
    try:
        enqueue(queue, "r1", "crawl", ["stuck.test"], {})
        assert queue.lease("w1", 5) == [("r1", "stuck.test")]
        assert queue.renew("w2", [("r1", "stuck.test")]) == 0  # only the holder renews
        time.sleep(0.3)
        assert queue.reap() == (1, 0)
        assert queue.lease("w2", 5) == [("r1", "stuck.test")]
        time.sleep(0.3)
        assert queue.reap() == (0, 1)
        with Store.open(tmp_path / "x.db", lock="ingest") as store:
            report = ingest(queue, store)
        assert report.finished == ["r1"]
        (scan,) = rows(tmp_path / "x.db", "select status, error_kind, error_message from scans")
        assert (scan["status"], scan["error_kind"]) == ("error", "other")
        assert scan["error_message"].startswith("abandoned: 2 worker(s) took this domain")
    finally:
        queue.close()


def test_a_run_whose_enqueuer_died_is_sealed_with_what_was_queued(redis_server: RedisServer, tmp_path: Path) -> None:
    queue = RunQueue.connect(redis_server.url, prefix="orphan", enqueue_stale=0.3)
    try:
        queue.create_run("r1", "crawl", {})
        queue.push("r1", ["a.test", "b.test"])  # ... and the enqueuer was killed here: never sealed
        assert queue.seal_abandoned() == []  # it may still be queueing
        assert not queue.idle()
        time.sleep(0.5)
        assert sorted(d for _, d in queue.lease("w1", 10)) == ["a.test", "b.test"]
        queue.reap()  # any worker's or the writer's reap seals it now
        counts = queue.counts("r1")
        assert counts["state"] == "open" and counts["cut_short"].startswith("its enqueuer stopped")
        scans = [ScanResult(d, "r1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "ok", pages=1)
                 for d in ("a.test", "b.test")]
        assert queue.complete(scans) == 2
        with Store.open(tmp_path / "x.db", lock="ingest") as store:
            report = ingest(queue, store)
        assert (report.written, report.finished) == (2, ["r1"])  # finished, not waited on forever
    finally:
        queue.close()


def test_an_interrupted_enqueue_seals_its_run(redis_server: RedisServer) -> None:
    queue = RunQueue.connect(redis_server.url, prefix="cut")
    try:
        def domains() -> Iterator[str]:
            yield from (f"d{n}.test" for n in range(2500))  # one batch of 2,000 is sent
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            enqueue(queue, "r1", "crawl", domains(), {})
        counts = queue.counts("r1")
        assert (counts["state"], counts["enqueued"]) == ("open", 2000)
        assert counts["cut_short"] == "queueing was interrupted (KeyboardInterrupt)"
        seen = invoke("status", "--redis", redis_server.url, "--redis-prefix", "cut")
        assert "sealed early: queueing was interrupted (KeyboardInterrupt), 2,000 domains" in seen.output
    finally:
        queue.close()


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "--redis", "{url}"],
        ["ingest", "--redis", "{url}", "--db", "{db}"],
        ["status", "--redis", "{url}"],
        ["crawl", "{list}", "--redis", "{url}", "--db", "{db}"],
    ],
    ids=["worker", "ingest", "status", "crawl"],
)
def test_unreachable_redis_is_a_clear_error_at_once(args: list[str], tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    (tmp_path / "d.txt").write_text("a.test\n", encoding="utf-8")
    values = {"url": url, "db": str(tmp_path / "x.db"), "list": str(tmp_path / "d.txt")}
    started = time.monotonic()
    result = CliRunner().invoke(cli, [a.format(**values) for a in args])
    assert result.exit_code == 1, result.output
    assert f"{url}: cannot reach Redis" in result.output
    assert "nothing was done" in result.output
    assert time.monotonic() - started < 10


def test_fetch_options_with_redis_belong_to_the_workers(redis_server: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("a.test\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["crawl", str(tmp_path / "d.txt"), "--redis", redis_server.url,
                                      "--redis-prefix", "opts", "--pages", "5", "--proxy", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--pages, --proxy: with --redis the workers fetch and detect" in result.output
    assert counts(redis_server.url, "opts")["queued"] == 0


def test_refresh_with_redis_queues_the_stale_domains(redis_server: RedisServer, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store.open(db) as store:
        store.add_domains(["old-one.test", "old-two.test"])
    result = invoke("refresh", "--db", str(db), "--older-than", "0", "--redis", redis_server.url,
                    "--redis-prefix", "refresh", "--json")
    assert json.loads(result.output)["queued"] == 2
    assert counts(redis_server.url, "refresh")["queued"] == 2


def test_a_bad_redis_url_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--redis", "http://127.0.0.1:6379"])
    assert result.exit_code == 1
    assert '"http://127.0.0.1:6379" is not a Redis URL' in result.output


@pytest.mark.parametrize("command", ["worker", "ingest"])
def test_help_and_readme(command: str) -> None:
    import re

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "Exit status" in result.output
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"detector {command}" in text
    for option in set(re.findall(r"(--[a-z][a-z-]+)", result.output)) - {"--help"}:
        assert option in text, f"README does not mention {command} option {option}"
