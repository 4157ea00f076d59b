"""Shared fixtures: the bundled engine, the small test library, the shared corpus."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Compiled engines go to a cache of this test run, never the user's ~/.cache (subprocesses
# inherit it).  Set before anything loads an engine; removed when the run ends.
_CACHE = tempfile.mkdtemp(prefix="detector-test-cache-")
os.environ["DETECTOR_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

# Nothing in the suite may leave loopback: the guard covers this process (installed here) and,
# through the environment, every detector subprocess (detector/__init__ installs it there).
# Once per run: test modules that import tests.conftest run this file a second time.
if "DETECTOR_EGRESS_LOG" not in os.environ:
    os.environ["DETECTOR_EGRESS_LOG"] = str(Path(_CACHE) / "egress.log")
_EGRESS_LOG = Path(os.environ["DETECTOR_EGRESS_LOG"])
os.environ["DETECTOR_EGRESS"] = "loopback"

from detector import egress

egress.install()

from detector.engine.match import Engine

ROOT = Path(__file__).resolve().parent.parent
TEST_SIGNATURES = Path(__file__).resolve().parent / "signatures"
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "dev.jsonl.gz"
REFERENCE = SHARED / "bench" / "reference" / "wappalyzer-core-dev.jsonl.gz"
WAPPALYZER_DATA = SHARED / "data" / "wappalyzer"


class EgressWatch:
    """What the egress guard refused during one test, in this process and in its subprocesses."""

    def __init__(self) -> None:
        self.start_attempts = len(egress.attempts)
        self.start_log = _EGRESS_LOG.stat().st_size if _EGRESS_LOG.exists() else 0

    def refused(self) -> list[str]:
        """Every refusal since the test began (subprocess ones with their pid)."""
        found = list(egress.attempts[self.start_attempts:])
        if _EGRESS_LOG.exists():
            with _EGRESS_LOG.open(encoding="utf-8") as log:
                log.seek(self.start_log)
                mine = f"pid {os.getpid()}:"  # this process's own refusals are in egress.attempts
                found += [line.rstrip("\n") for line in log if not line.startswith(mine)]
        return found

    def forget(self) -> None:
        """Accept the refusals so far (a test that provokes one on purpose)."""
        del egress.attempts[self.start_attempts:]
        self.start_log = _EGRESS_LOG.stat().st_size if _EGRESS_LOG.exists() else 0


@pytest.fixture(autouse=True)
def egress_guard() -> Iterator[EgressWatch]:
    """Fail any test that tried to reach beyond 127.0.0.1 (connection or DNS lookup)."""
    watch = EgressWatch()
    yield watch
    refused = watch.refused()
    if refused:
        pytest.fail("the test tried to leave loopback:\n  " + "\n  ".join(refused[:10]), pytrace=False)


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
