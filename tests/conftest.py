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
# This module is imported twice in a run (by pytest as `conftest`, by test files as
# `tests.conftest`): the second import must reuse the first one's folder, or the two halves of
# the suite would disagree on DETECTOR_CACHE_DIR and DETECTOR_EGRESS_LOG.
_MARK = os.environ.get("_DETECTOR_TEST_RUN", "")
_CACHE = (_MARK.split(":", 1)[1] if _MARK.startswith(f"{os.getpid()}:")
          else tempfile.mkdtemp(prefix="detector-test-cache-"))
os.environ["_DETECTOR_TEST_RUN"] = f"{os.getpid()}:{_CACHE}"
os.environ["DETECTOR_CACHE_DIR"] = _CACHE
os.environ.setdefault("DETECTOR_CACHE_KEEP", "64")  # many small libraries: keep the bundled one compiled
# Crawls in tests read pages statically unless a test asks for the rendered tier (--render).
os.environ["DETECTOR_RENDER"] = "off"
atexit.register(shutil.rmtree, _CACHE, True)

# Nothing in the suite may leave loopback: the guard covers this process (installed here) and,
# through the environment, every detector subprocess (detector/__init__ installs it there).
# Once per run: test modules that import tests.conftest run this file a second time.
if "DETECTOR_EGRESS_LOG" not in os.environ:
    _EGRESS_DIR = tempfile.mkdtemp(prefix="detector-test-egress-")
    atexit.register(shutil.rmtree, _EGRESS_DIR, True)
    os.environ["DETECTOR_EGRESS_LOG"] = str(Path(_EGRESS_DIR) / "egress.log")
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
    """What the egress guard refused during one test, in this process and in its subprocesses.

    Each test's subprocesses log to a file of the test's own (``DETECTOR_EGRESS_LOG`` is pointed
    at it for the test), so nothing another test or a lingering process writes is mixed in;
    what module- and session-scoped fixtures' subprocesses refuse lands in the run's log,
    checked when the run ends.
    """

    _count = 0

    def __init__(self) -> None:
        EgressWatch._count += 1
        self.log = Path(_CACHE) / f"egress-{EgressWatch._count}.log"
        self.start_attempts = len(egress.attempts)
        self.start_log = 0

    def refused(self) -> list[str]:
        """Every refusal since the test began (subprocess ones with their pid)."""
        return list(egress.attempts[self.start_attempts:]) + _log_lines(self.log, self.start_log)

    def forget(self) -> None:
        """Accept the refusals so far (a test that provokes one on purpose)."""
        del egress.attempts[self.start_attempts:]
        self.start_log = self.log.stat().st_size if self.log.exists() else 0


def _log_lines(path: Path, start: int) -> list[str]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as log:
        log.seek(start)
        mine = f"pid {os.getpid()}:"  # this process's own refusals are in egress.attempts
        return [line.rstrip("\n") for line in log if not line.startswith(mine)]


@pytest.fixture(autouse=True)
def egress_guard() -> Iterator[EgressWatch]:
    """Fail any test that tried to reach beyond 127.0.0.1 (connection or DNS lookup)."""
    watch = EgressWatch()
    os.environ["DETECTOR_EGRESS_LOG"] = str(watch.log)
    try:
        yield watch
    finally:
        os.environ["DETECTOR_EGRESS_LOG"] = str(_EGRESS_LOG)
    refused = watch.refused()
    if refused:
        pytest.fail("the test tried to leave loopback:\n  " + "\n  ".join(refused[:10]), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Refusals by subprocesses of module- or session-scoped fixtures fail the run too."""
    stray = _log_lines(_EGRESS_LOG, 0)
    if stray:
        print("\nthe egress guard refused, outside any test:\n  " + "\n  ".join(stray[:10]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


# ---------------------------------------------------------------------------- slow tests
# `python3 -m pytest -m "not slow"` is the fast command of the README (under 2 minutes); the
# full suite runs them all.  Marked here, in one place, from `--durations` on the 2-core
# development machine (each took 1.5 s or more there, most 5-30 s: crawls in subprocesses,
# the whole library, the corpus), so test files need no edits.  Add to these lists, not to tests.

#: Modules whose every test is slow.
SLOW_MODULES = frozenset({
    "test_accuracy_bench.py",
    "test_corpus.py",
    "test_demo.py",
    "test_demo_serve.py",
    "test_distributed.py",
    "test_dns.py",
    "test_fault_matrix.py",
    "test_quarterly.py",
    "test_refresh_reuse.py",
    "test_render.py",
    "test_report_browser.py",
    "test_ssrf.py",
    "test_site_crawl.py",
    "test_walkthrough.py",
})
#: Fixtures that crawl (once per module): every test that uses one waits for it.
SLOW_FIXTURES = frozenset({"crawled", "outcome_crawl", "built"})
#: Single tests (module::name, parameters ignored).
SLOW_TESTS = frozenset({
    "test_crawl.py::test_a_python_user_crawls_without_the_cli",
    "test_crawl.py::test_crawled_site_matches_detect_cases",
    "test_crawl.py::test_csv_from_stdin_with_progress_and_subdomains",
    "test_crawl.py::test_engine_workers_that_cannot_start_fail_the_run",
    "test_crawl.py::test_rescan_keeps_first_seen",
    "test_crawl.py::test_scrapy_crawl_domains_runs_the_same_spider",
    "test_crawl_outcomes.py::test_a_database_that_refuses_writes_fails_the_crawl",
    "test_crawl_outcomes.py::test_a_long_lock_holds_back_the_crawl_not_memory",
    "test_crawl_outcomes.py::test_crawl_keeps_fetching_while_the_database_is_locked",
    "test_crawl_outcomes.py::test_engine_failure_still_gives_every_domain_its_row",
    "test_crawl_outcomes.py::test_removal_is_recorded_past_a_blocked_page",
    "test_crawl_outcomes.py::test_robots_per_host_with_a_small_cache",
    "test_errors.py::test_a_semicolon_csv_crawls_its_domains",
    "test_importer.py::test_round_trip_shipped_data",
    "test_refresh.py::test_kill_9_at_random_points_then_rerun",
    "test_refresh.py::test_lifecycle_crawl_change_refresh",
    "test_refresh.py::test_partial_scan_never_removes",
    "test_refresh.py::test_sigterm_and_kill_9_with_engine_workers",
    "test_signatures.py::test_check_flags_slow_backtracking",
    "test_signatures.py::test_shipped_library_passes_check",
    "test_site.py::test_one_page_site_is_detect_on_corpus",
    "test_storage.py::test_layers_import_only_what_they_need",
    "test_storage.py::test_library_mirror",
    "test_store.py::test_a_migration_killed_half_way_leaves_the_database_openable",
    "test_store.py::test_four_processes_opening_one_new_database_all_succeed",
    "test_store.py::test_opening_with_the_lock_refuses_a_second_holder",
})


def is_slow(item: pytest.Item) -> bool:
    """Whether a collected test is on the slow lists above."""
    module = item.path.name
    name = f"{module}::{item.name.split('[', 1)[0]}"
    fixtures = set(getattr(item, "fixturenames", ()))
    return module in SLOW_MODULES or name in SLOW_TESTS or bool(fixtures & SLOW_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests (see SLOW_MODULES, SLOW_FIXTURES, SLOW_TESTS)."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
