"""The compiled-engine cache: keyed by the library's content (not its path), cleaned, never ~/.cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detector.engine.cache import cache_directory, cache_path, clean_cache, write_cache
from detector.engine.match import Engine
from tests.conftest import ROOT, TEST_SIGNATURES


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(folder))
    monkeypatch.delenv("DETECTOR_CACHE_KEEP", raising=False)
    return folder


def test_the_key_is_the_content_not_the_place(cache: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "sigs"
    shutil.copytree(TEST_SIGNATURES, copy)
    assert cache_path([copy], True, True) == cache_path([TEST_SIGNATURES], True, True)
    first = Engine.from_directories([TEST_SIGNATURES])
    again = Engine.from_directories([copy])  # read from the entry the first one wrote
    assert len(list(cache.glob("engine-*.pickle"))) == 1
    assert again.library.version == first.library.version
    assert again.library.directories == (str(copy),)  # says where it was loaded from this time
    (copy / "cms" / "shopy.yaml").write_text(
        (copy / "cms" / "shopy.yaml").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert cache_path([copy], True, True) != cache_path([TEST_SIGNATURES], True, True)
    Engine.from_directories([copy])
    assert len(list(cache.glob("engine-*.pickle"))) == 2


def test_cleaning_keeps_the_most_recently_used(cache: Path) -> None:
    cache.mkdir()
    now = time.time()
    for n in range(9):
        entry = cache / f"engine-{n:016x}.pickle"
        entry.write_bytes(b"x")
        os.utime(entry, (now - 1000 + n, now - 1000 + n))
    leftover = cache / "engine-0000000000000001.4242.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (now - 7200, now - 7200))
    fresh_tmp = cache / "engine-0000000000000002.4343.tmp"  # a writer at work right now
    fresh_tmp.write_bytes(b"half")
    other = cache / "notes.txt"
    other.write_text("not ours")
    removed = clean_cache(cache, keep=4)
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["engine-0000000000000002.4343.tmp", "engine-0000000000000005.pickle",
                     "engine-0000000000000006.pickle", "engine-0000000000000007.pickle",
                     "engine-0000000000000008.pickle", "notes.txt"]
    assert len(removed) == 6


def test_writing_an_engine_cleans_old_entries(cache: Path) -> None:
    cache.mkdir()
    for n in range(8):
        old = cache / f"engine-{n:016x}.pickle"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    target = cache_path([TEST_SIGNATURES], True, True)
    write_cache(target, {"an": "engine"})
    kept = sorted(cache.glob("engine-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
    assert len(kept) == 6 and kept[0] == target


def test_subprocesses_of_the_tests_use_the_temporary_cache() -> None:
    """conftest points DETECTOR_CACHE_DIR at a per-run folder; children (crawl workers) inherit it."""
    home_cache = (Path.home() / ".cache").resolve()
    assert not cache_directory().resolve().is_relative_to(home_cache)
    done = subprocess.run([sys.executable, "-c", "from detector.engine.cache import cache_directory as c; print(c())"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    child = Path(done.stdout.strip()).resolve()
    assert child == cache_directory().resolve()
    assert not child.is_relative_to(home_cache)
