"""The fault matrix: every hostile behaviour of tests/fault_cases.py, crawled for real through
the fault server, must end as its row says, within its time and memory bounds; the table in
docs/fault-matrix.md is this one; the README's error kinds are the stored ones."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from detector.store.scans import ERROR_KINDS
from tests.fault_cases import CASES, Case, Matrix, matrix_markdown, run_matrix, start_server
from tests.faults import FaultServer
from tests.servers import ROOT


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    srv = start_server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def matrix(server: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    return run_matrix(server.url, tmp_path_factory.mktemp("faults"))


def test_the_crawl_ran(matrix: Matrix) -> None:
    assert matrix.code == 0, matrix.err[-2000:]
    assert set(matrix.outcomes) == {c.host for c in CASES}, "every case ends as exactly one scan"


@pytest.mark.parametrize("case", CASES, ids=[c.host.removesuffix(".test") for c in CASES])
def test_case(matrix: Matrix, case: Case) -> None:
    outcome = matrix.outcomes.get(case.host)
    assert outcome is not None, f"no scan for {case.host}: {matrix.err[-1000:]}"
    scan = outcome.scan
    assert (scan["status"], scan["error_kind"]) == (case.status, case.kind), scan
    assert case.message in (scan["error_message"] or ""), scan["error_message"]
    if case.detects:
        assert case.detects in outcome.detections, outcome.detections
    assert outcome.seconds <= case.seconds, f"{outcome.seconds:.1f} s"
    assert outcome.peak_mb <= case.megabytes, f"{outcome.peak_mb:.0f} MB"


def test_no_case_reached_a_private_address(matrix: Matrix, server: FaultServer) -> None:
    """The redirects to 10.0.0.1 and 169.254.169.254 were refused before the proxy was asked."""
    asked = {r.host for r in server.log}
    assert {"redirect-private.test", "redirect-metadata.test", "elsewhere-target.test"} <= asked
    assert not asked & {"10.0.0.1", "169.254.169.254"}, asked


def test_docs_are_current() -> None:
    doc = ROOT / "docs" / "fault-matrix.md"
    assert doc.read_text(encoding="utf-8") == matrix_markdown(), (
        "docs/fault-matrix.md is out of date: python3 -m tests.fault_cases > docs/fault-matrix.md")


def test_readme_error_kinds_are_the_stored_ones() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Error kinds", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_0-9]+)` \|", table, flags=re.MULTILINE)[1:]  # [0]: the header
    assert sorted(documented) == sorted(ERROR_KINDS)
    assert {c.kind for c in CASES if c.kind} <= set(ERROR_KINDS)
