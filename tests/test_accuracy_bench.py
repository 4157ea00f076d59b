"""The hand-judged accuracy benchmark: labels are well-formed and bench/accuracy.py runs on them."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl.gz"
LABELS = ROOT / "bench" / "accuracy" / "labels.jsonl"
PAGES = ROOT / "bench" / "accuracy" / "pages.txt"

needs_corpus = pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is absent")


def read_labels() -> list[dict[str, object]]:
    with LABELS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_labels_are_well_formed() -> None:
    labels = read_labels()
    assert labels, "no labelled pages"
    picked = PAGES.read_text(encoding="utf-8").split()
    seen_ids: set[str] = set()
    for page in labels:
        assert set(page) == {"id", "judgements"}, page.get("id")
        pid = page["id"]
        assert isinstance(pid, str) and pid not in seen_ids, pid
        assert pid in picked, f"{pid} is not in the fixed pick (pages.txt)"
        seen_ids.add(pid)
        judgements = page["judgements"]
        assert isinstance(judgements, list) and judgements, pid
        names = []
        for j in judgements:
            assert isinstance(j, dict) and set(j) == {"technology", "present", "proof"}, (pid, j)
            assert isinstance(j["technology"], str) and j["technology"].strip(), (pid, j)
            assert isinstance(j["present"], bool), (pid, j)
            assert isinstance(j["proof"], str) and 0 < len(j["proof"]) <= 160, (pid, j)
            names.append(j["technology"])
        assert len(names) == len(set(names)), f"{pid}: a technology is judged twice"


@needs_corpus
def test_label_ids_exist_in_corpus() -> None:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        ids = {json.loads(line)["id"] for line in f}
    missing = [p["id"] for p in read_labels() if p["id"] not in ids]
    assert not missing
    assert set(PAGES.read_text(encoding="utf-8").split()) <= ids


@needs_corpus
def test_accuracy_bench_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "accuracy.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout)
    assert result["pages"] == len(read_labels())
    for name in ("default", "reference"):
        r = result["results"][name]
        assert r["tp"] + r["fn"] > 0
        assert 0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0


def test_accuracy_bench_skips_without_corpus(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "accuracy.py"),
            "--corpus",
            str(tmp_path / "none.gz"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0
    assert "corpus not found" in out.stderr


@needs_corpus
def test_pick_follows_the_fixed_rule() -> None:
    """pages.txt is the first N ids of each kind in sha256(id) order (see bench/accuracy/README.md)."""
    quota = {"traf": 38, "rdb": 16, "warc": 16, "har": 8, "http": 6}
    by_kind: dict[str, list[str]] = {k: [] for k in quota}
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            if not case["html"] and not (case["headers"] or case.get("script_urls")):
                continue
            by_kind[case["id"].split("-")[0]].append(case["id"])
    expected = []
    for kind, n in quota.items():
        expected += sorted(by_kind[kind], key=lambda i: hashlib.sha256(i.encode()).hexdigest())[:n]
    assert PAGES.read_text(encoding="utf-8").split() == expected
