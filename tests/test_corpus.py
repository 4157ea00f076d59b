"""The engine on the real pages of ../shared/corpus (skipped where it is absent)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from detector.engine.cases import iter_cases, page_from_case
from detector.engine.checks import WORST_CASE_LIMIT, check_examples, time_pattern, worst_case_inputs
from detector.engine.match import Engine, cap_value
from tests.conftest import REFERENCE


def _static_case(case: dict[str, object]) -> dict[str, object]:
    # the reference run does not use the HAR cases' script_urls
    return {k: v for k, v in case.items() if k != "script_urls"}


@pytest.fixture(scope="module")
def compat_engine() -> Engine:
    """The bundled library in the reference engine's mode (``--compat wappalyzer``)."""
    return Engine.from_directories(None, mode="wappalyzer")


def test_conformance_with_reference_engine(compat_engine: Engine, corpus: Path) -> None:
    if not REFERENCE.exists():
        pytest.skip("reference output is not available")
    engine = compat_engine
    with gzip.open(REFERENCE, "rt") as f:
        ref = {str(o["id"]): {t["name"] for t in o["technologies"]} for o in map(json.loads, f)}
    tp = fp = fn = 0
    for case in iter_cases(corpus):
        mine = {d.technology for d in engine.detect(page_from_case(_static_case(case)))}
        theirs = ref[str(case["id"])]
        tp += len(mine & theirs)
        fp += len(mine - theirs)
        fn += len(theirs - mine)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.99, (tp, fp, fn)


def test_pure_python_path_gives_identical_results(engine: Engine, corpus: Path) -> None:
    python = Engine(engine.library, accelerate=False)
    cases = [c for i, c in enumerate(iter_cases(corpus)) if i % 8 == 0]
    assert len(cases) > 40
    for case in cases:
        page = page_from_case(case)
        assert [d.to_dict() for d in engine.detect(page)] == [d.to_dict() for d in python.detect(page)], case["id"]


def test_every_pattern_is_fast_on_worst_case_inputs(engine: Engine) -> None:
    """Every pattern the engine runs, on generated 1 MB worst-case inputs: none over 50 ms."""
    slow = []
    # the first four worst-case inputs are the same for every pattern
    generic = worst_case_inputs(next(p for _, _, p in engine.iter_patterns()))[:4]
    for name, kind, pattern in engine.iter_patterns():
        inputs = [cap_value(kind, x) for x in worst_case_inputs(pattern)[4:] + generic]
        worst = time_pattern(pattern, inputs)
        if worst > WORST_CASE_LIMIT:
            # one retry: a busy machine must not fail the run, a slow pattern fails twice
            worst = time_pattern(pattern, inputs)
            if worst > WORST_CASE_LIMIT:
                slow.append((name, kind, pattern.regex, round(worst * 1000)))
    assert slow == []


def test_shipped_examples_pass(engine: Engine) -> None:
    assert check_examples(engine.library) == []
