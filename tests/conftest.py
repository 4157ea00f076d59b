"""Shared fixtures: the bundled engine, the small test library, the shared corpus."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Compiled engines go to a cache of this test run, never the user's ~/.cache (subprocesses
# inherit it).  Set before anything loads an engine; removed when the run ends.
_CACHE = tempfile.mkdtemp(prefix="detector-test-cache-")
os.environ["DETECTOR_CACHE_DIR"] = _CACHE
# Crawls in tests read pages statically unless a test asks for the rendered tier (--render).
os.environ["DETECTOR_RENDER"] = "off"
atexit.register(shutil.rmtree, _CACHE, True)

from detector.engine.match import Engine

ROOT = Path(__file__).resolve().parent.parent
TEST_SIGNATURES = Path(__file__).resolve().parent / "signatures"
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "dev.jsonl.gz"
REFERENCE = SHARED / "bench" / "reference" / "wappalyzer-core-dev.jsonl.gz"
WAPPALYZER_DATA = SHARED / "data" / "wappalyzer"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The bundled library, compiled once for the whole run."""
    return Engine.from_directories(None)


@pytest.fixture(scope="session")
def test_engine() -> Engine:
    """The small hand-written library in tests/signatures (accelerated)."""
    return Engine.from_directories([TEST_SIGNATURES])


@pytest.fixture(scope="session")
def test_engine_python() -> Engine:
    """The same library on the pure-Python path (no Hyperscan, no RE2)."""
    return Engine.from_directories([TEST_SIGNATURES], accelerate=False)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus; tests using it skip in a clone without ../shared."""
    if not CORPUS.exists():
        pytest.skip("../shared/corpus is not available")
    return CORPUS
