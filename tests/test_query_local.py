"""Querying a database of local sites as the README says: its sqlite-utils and Datasette
examples, run as written, and Datasette itself on 127.0.0.1 with the shipped metadata.

The database: README's walk-through (accounts import, crawl of the demo sites through the
local proxy, segment), then a second crawl in which northwind-blog.test has dropped its
WordPress (so "who dropped X" has an answer).  Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.demo import demo_sites
from detector.demo.vhosts import Route, Site
from tests.servers import ROOT, free_port, rows, run_detector, start_proxy
from tests.test_walkthrough import walkthrough

README = ROOT / "README.md"
DB = "detector.db"
CRAWL_NET = ["--no-dns", "--workers", "0", "--timeout", "5", "--retries", "0"]


def readme_commands(first_words: tuple[str, ...]) -> list[list[str]]:
    """Every command of README's ``sh`` blocks that starts with one of ``first_words``, split
    like a shell would (a quoted SQL statement may run over several lines)."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # an open quote: the command goes on on the next line
                continue
            pending = ""
            if words and words[0] in first_words:
                found.append(words)
    return found


@pytest.fixture(scope="module")
def local_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """README's walk-through database, then a re-crawl in which northwind-blog.test lost WordPress."""
    folder = tmp_path_factory.mktemp("query")
    accounts_csv, commands, _ = walkthrough()
    (folder / "accounts.csv").write_text(accounts_csv, encoding="utf-8")
    (folder / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "rules.yaml", folder / "examples" / "rules.yaml")
    proxy = start_proxy(demo_sites())
    try:
        for command in commands:
            args = command[1:]
            if args[0] == "crawl":
                args = [a for a in args if a not in ("--no-dns",)]
                args[args.index("--proxy") + 1] = proxy.url
                args += CRAWL_NET
            run = run_detector(args, cwd=folder)
            assert run.code == 0, f"{command}: {run.err}"
    finally:
        proxy.stop()
    plain = Site("northwind-blog.test", {"/": Route(body=b"<html><head><title>Northwind</title></head>"
                                                        b"<body><p>We moved to a static site.</p></body></html>")})
    proxy = start_proxy({**demo_sites(), "northwind-blog.test": plain})
    try:
        run = run_detector(["crawl", "-", "--db", DB, "--proxy", proxy.url, "--miss-threshold", "1", *CRAWL_NET],
                           cwd=folder, stdin="northwind-blog.test\n")
        assert run.code == 0, run.err
    finally:
        proxy.stop()
    return folder / DB


# ---------------------------------------------------------------------------- README examples


def test_readme_sqlite_utils_examples_run_on_the_local_database(local_db: Path) -> None:
    commands = readme_commands(("sqlite-utils",))
    assert len(commands) >= 4, commands  # the database section, the views, the cohorts
    for words in commands:
        # Each example names its database as the section does (accounts.db, detector.db): here, ours.
        args = [str(local_db) if w.endswith(".db") else w for w in words[1:]]
        proc = subprocess.run([sys.executable, "-m", "sqlite_utils", *args], capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0 and not proc.stderr, f"{shlex.join(words)}:\n{proc.stderr}"
        sql = next(a for a in args if a.lower().lstrip().startswith("select"))
        expected = rows(local_db, sql)  # the same statement, read without sqlite-utils
        assert expected, f"README example answers nothing on the demo database: {sql}"
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if "-t" in args:  # header, rule, one line per row
            assert len(lines) == 2 + len(expected), proc.stdout
            assert lines[0].split()[0] == next(iter(expected[0])), proc.stdout
        else:
            assert json.loads(proc.stdout) == expected


def test_readme_datasette_metadata_example(local_db: Path) -> None:
    [words] = [w for w in readme_commands(("detector",)) if w[1:2] == ["datasette-metadata"]]
    assert words[-2:] == [">", "metadata.json"], words
    run = run_detector(words[1:-2], cwd=local_db.parent)
    assert run.code == 0, run.err
    meta = json.loads(run.out)
    assert set(meta["databases"]) == {local_db.stem}
    assert {"who_runs", "dropped_recently", "cohort_by_tier", "stale_accounts", "failing_domains"} <= set(
        meta["databases"][local_db.stem]["queries"])


def test_readme_technologies_examples(local_db: Path) -> None:
    commands = [w for w in readme_commands(("detector",)) if w[1:2] == ["technologies"]]
    assert len(commands) >= 2, commands
    for words in commands:
        run = run_detector(words[1:], cwd=local_db.parent)
        assert run.code == 0 and not run.err, f"{shlex.join(words)}: {run.err}"
        assert run.out.strip(), shlex.join(words)
        named = [w for w in words[2:] if w.endswith(".test")]
        technology = words[words.index("--technology") + 1] if "--technology" in words else None
        sql = ("SELECT DISTINCT domain FROM detections WHERE status = 'active'"
               + (" AND technology = ?" if technology else "") + (" AND domain = ?" if named else ""))
        expected = {r["domain"] for r in rows(local_db, sql, *([technology] if technology else []), *named)}
        assert expected, f"README example lists nothing on the demo database: {shlex.join(words)}"
        if "line" in words:
            assert {ln.split(" [")[0] for ln in run.out.splitlines()} == expected
        else:
            assert {ln.split()[0] for ln in run.out.splitlines()[1:]} == expected


# ---------------------------------------------------------------------------- Datasette


class Datasette:
    """``datasette`` (README's command) serving the database on 127.0.0.1."""

    def __init__(self, folder: Path, command: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "datasette.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "datasette", *command[1:], "--host", "127.0.0.1", "--port", str(self.port),
                 "--setting", "sql_time_limit_ms", "10000"],
                cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"datasette did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def get(self, path: str, **params: str) -> str:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1
        with opener.open(url, timeout=30) as resp:
            return str(resp.read().decode("utf-8"))

    def json(self, path: str, **params: str) -> Any:
        return json.loads(self.get(path, **params))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


@pytest.fixture(scope="module")
def datasette(local_db: Path) -> Iterator[Datasette]:
    pytest.importorskip("datasette", reason="datasette is not installed (pip install -e '.[datasette]')")
    folder = local_db.parent
    run = run_detector(["datasette-metadata", "--db", DB], cwd=folder)
    assert run.code == 0, run.err
    (folder / "metadata.json").write_text(run.out, encoding="utf-8")
    [command] = readme_commands(("datasette",))
    assert command[1:] == [DB, "--metadata", "metadata.json"], command
    server = Datasette(folder, command)
    try:
        yield server
    finally:
        server.stop()


def canned(datasette: Datasette, name: str, **params: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = datasette.json(f"/detector/{name}.json", _shape="array", **params)
    return answer


def test_every_canned_query_answers_over_http(datasette: Datasette, local_db: Path) -> None:
    queries = datasette.json("/-/metadata.json")["databases"]["detector"]["queries"]
    params = {"technology": "Shopify", "cohort": "integration"}
    for name, query in queries.items():
        wanted = {n: params[n] for n in set(re.findall(r":(\w+)", query["sql"]))}
        assert canned(datasette, name, **wanted) == rows(local_db, re.sub(r":(\w+)", "?", query["sql"]),
                                                         *[wanted[n] for n in re.findall(r":(\w+)", query["sql"])])
    # and the answers are the demo sites' truth
    assert {r["domain"] for r in canned(datasette, "who_runs", technology="Shopify")} == {"acme-outdoor.test"}
    assert [r["domain"] for r in canned(datasette, "dropped_recently", technology="WordPress")] == [
        "northwind-blog.test"]
    assert "northwind-blog.test" not in {r["domain"] for r in canned(datasette, "who_runs", technology="WordPress")}
    tiers = canned(datasette, "cohort_by_tier", cohort="integration")
    assert [(r["tier"], r["domain"]) for r in tiers][:1] == [(1, "acme-outdoor.test")]
    failing = canned(datasette, "failing_domains")
    assert ("gone-bankrupt.test", "dns") in {(r["domain"], r["error_kind"]) for r in failing}
    stale = {r["domain"]: r for r in canned(datasette, "stale_accounts")}
    assert "gone-bankrupt.test" in stale and stale["gone-bankrupt.test"]["last_ok_at"] is None
    assert "acme-outdoor.test" not in stale


def test_metadata_titles_descriptions_and_facets_show(datasette: Datasette) -> None:
    home = datasette.get("/detector")
    assert "Who runs a technology" in home  # canned query titles
    page = datasette.get("/detector/detections")
    assert "One row per domain and technology" in page
    table = datasette.json("/detector/detections.json")
    assert {"technology", "status"} <= set(table["facet_results"])
    shopify = {f["value"]: f["count"] for f in table["facet_results"]["technology"]["results"]}
    assert shopify.get("Shopify") == 1


def test_foreign_keys_link_in_datasette(datasette: Datasette) -> None:
    labelled = datasette.json("/detector/detections.json", _shape="array", _labels="on", technology="Shopify")
    assert [r["domain"] for r in labelled] == [{"value": "acme-outdoor.test", "label": "acme-outdoor.test"}]
    assert labelled[0]["technology"]["value"] == "Shopify"
    page = datasette.get("/detector/detections", technology="Shopify")
    assert re.search(r'href="/detector/domains/acme-outdoor~2Etest"', page), "no link to the domain's row"
    assert re.search(r'href="/detector/technologies/Shopify"', page), "no link to the technology's row"
    scans = datasette.get("/detector/scans", domain="gone-bankrupt.test")
    assert 'href="/detector/domains/gone-bankrupt~2Etest"' in scans
    row = datasette.get("/detector/technologies/Shopify")  # the way back: who runs it
    links = row[row.index("Links from other tables"):]
    assert re.search(r'<a href="/detector/detections\?technology=Shopify">\s*1 row</a>\s*from technology in detections',
                     links), links[:500]
    domain = datasette.get("/detector/domains/gone-bankrupt~2Etest")
    assert re.search(r'href="/detector/scans\?domain=gone-bankrupt\.test">\s*1 row</a>\s*from domain in scans', domain)
