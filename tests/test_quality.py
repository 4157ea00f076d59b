"""The code keeps its promises: mypy --strict on detector/, ruff clean (skipped if not installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "detector"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed")
    done = subprocess.run(["ruff", "check", "detector", "tests", "bench"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_cli_modules_hold_no_sql() -> None:
    """The CLI parses, calls the library and prints: no SQL, no database handles of its own."""
    import ast

    problems = []
    for path in sorted((ROOT / "detector" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                problems += [f"{path.name}:{node.lineno} imports {n}" for n in names
                             if n.split(".")[0] in ("sqlite3", "sqlite_utils")]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("execute", "executemany", "executescript", "query")):
                problems.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
    assert problems == []


def test_the_engine_imports_no_crawler_database_or_cli() -> None:
    code = (
        "import sys\n"
        "import detector.engine, detector.engine.site, detector.engine.cache, detector.engine.checks\n"
        "bad = [m for m in ('scrapy', 'twisted', 'sqlite3', 'sqlite_utils', 'click') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_tests_never_write_the_user_cache() -> None:
    from detector.engine.cache import cache_directory

    cache = cache_directory().resolve()
    assert not cache.is_relative_to((Path.home() / ".cache").resolve()), cache


def test_the_slow_lists_name_real_tests() -> None:
    """conftest's SLOW_* lists must not rot: each module exists, each test is defined in its module."""
    from tests.conftest import SLOW_MODULES, SLOW_TESTS

    here = ROOT / "tests"
    missing = [m for m in SLOW_MODULES if not (here / m).is_file()]
    for entry in SLOW_TESTS:
        module, name = entry.split("::")
        path = here / module
        if not path.is_file() or f"def {name}(" not in path.read_text(encoding="utf-8"):
            missing.append(entry)
    assert missing == []


def test_slow_tests_are_marked(request: pytest.FixtureRequest) -> None:
    """The collection hook marks by module, fixture and name; this test itself is fast."""
    from tests.conftest import is_slow

    assert not is_slow(request.node)
    assert request.node.get_closest_marker("slow") is None
