"""A user library can neither hang a crawl nor exhaust memory: YAML aliases, file size and
pattern length are refused by load and check alike, and patterns on Python's ``re`` run under
a time budget per page (switched off once over it, and reported once, with their file)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from detector.demo.vhosts import Route, Site, VirtualHostProxy
from detector.engine.checks import check_library
from detector.engine.match import Engine
from detector.engine.page import Page
from detector.engine.signatures import MAX_FILE_BYTES, load_signatures
from detector.errors import SignatureError
from tests.conftest import TEST_SIGNATURES
from tests.servers import rows, run_detector

BACKTRACKER = 'name: Backtracker\ncategories: [CMS]\nhtml: "(a+)+!(?=x)"\n'
#: Text on which ``(a+)+!(?=x)`` backtracks for minutes on Python's ``re``.
TRAP = "<html><body><p>" + "a" * 40 + "!y</p></body></html>"


def library(tmp: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp / "lib"
    (root / "misc").mkdir(parents=True)
    shutil.copy(TEST_SIGNATURES / "categories.yaml", root / "categories.yaml")
    for name, text in files.items():
        path = root / "misc" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return root


def alias_bomb(levels: int = 12) -> str:
    """Billion laughs: each level nine times the one before (9**12 strings when expanded)."""
    lines = ["name: Bomb", "categories: [CMS]", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    lines.append(f"html: *l{levels}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_by_load_and_check(tmp_path: Path) -> None:
    root = library(tmp_path, {"bomb.yaml": alias_bomb()})
    started = time.monotonic()
    with pytest.raises(SignatureError, match=r"bomb.yaml: YAML aliases \(\*name\) are not allowed"):
        load_signatures([root])
    report = check_library([root], timing=False)
    assert any("YAML aliases" in p for p in report.problems)
    assert time.monotonic() - started < 5  # generous: it takes milliseconds


def test_anchor_without_alias_and_star_in_regex_are_fine(tmp_path: Path) -> None:
    root = library(tmp_path, {"ok.yaml": 'name: Star\ncategories: [CMS]\nhtml: ["a*b &c", "x: *y"]\nwebsite: "&x"\n'})
    assert "Star" in load_signatures([root]).signatures


def test_file_size_and_pattern_length_are_bounded(tmp_path: Path) -> None:
    big = b"name: Big\ncategories: [CMS]\nhtml: [" + b'"x",' * (MAX_FILE_BYTES // 4) + b'"y"]\n'
    long = f'name: Long\ncategories: [CMS]\nhtml: "{"ab" * 6000}"\n'
    root = library(tmp_path, {"big.yaml": big, "long.yaml": long})
    with pytest.raises(SignatureError) as err:
        load_signatures([root])
    assert "big.yaml: 1,048,616 bytes" in str(err.value) and "split it into one file per technology" in str(err.value)
    problems = check_library([root], timing=False).problems
    assert any("big.yaml" in p and "at most 1,048,576" in p for p in problems)
    assert any('"Long" html[0]: pattern of 12,000 characters; the limit is 10,000' in p for p in problems)
    with pytest.raises(SignatureError, match="pattern of 12,000 characters"):
        Engine.from_directories([library(tmp_path / "2", {"long.yaml": long})], cache=False)


def test_backtracking_pattern_is_switched_off_once(tmp_path: Path) -> None:
    engine = Engine.from_directories([library(tmp_path, {"backtracker.yaml": BACKTRACKER})], cache=False)
    page = Page.from_http("https://trap.test/", status=200, headers={"content-type": "text/html"},
                          body=TRAP.encode())
    started = time.monotonic()
    assert engine.detect(page) == []
    first = time.monotonic() - started
    (off,) = engine.switched_off()
    assert off.endswith('misc/backtracker.yaml: "Backtracker" html[0]')
    started = time.monotonic()
    engine.detect(page)
    assert time.monotonic() - started < first / 5 and engine.switched_off() == []  # off, and said once
    assert first < 5  # the budget (0.5 s) stopped it; unbounded, it runs for minutes


def test_check_rejects_the_backtracking_pattern(tmp_path: Path) -> None:
    report = check_library([library(tmp_path, {"backtracker.yaml": BACKTRACKER})])
    assert any("catastrophic backtracking" in p for p in report.problems)


@pytest.mark.parametrize("workers", [0, 1], ids=["inline", "worker"])
def test_crawl_with_a_pathological_pattern_finishes_and_reports_it(tmp_path: Path, workers: int) -> None:
    html = (("Content-Type", "text/html; charset=utf-8"),)
    sites = {f"trap{n}.test": Site(f"trap{n}.test", {"/": Route(200, html, TRAP.encode())}) for n in range(4)}
    proxy = VirtualHostProxy(sites).start()
    try:
        root = library(tmp_path, {"backtracker.yaml": BACKTRACKER})
        listing = tmp_path / "domains.txt"
        listing.write_text("\n".join(sites) + "\n", encoding="utf-8")
        db = tmp_path / "trap.db"
        run = run_detector(["crawl", str(listing), "--db", str(db), "--proxy", proxy.url, "--no-dns", "--signatures",
                            str(TEST_SIGNATURES), "--signatures", str(root), "--workers", str(workers),
                            "--retries", "0", "--timeout", "5"], timeout=120)
    finally:
        proxy.stop()
    assert run.code == 0, run.err
    assert run.err.count("switched off for the rest of the run") == 1, run.err
    assert 'backtracker.yaml: "Backtracker" html[0]: switched off' in run.err
    assert [r["status"] for r in rows(db, "select status from scans")] == ["ok"] * 4
