"""Engine modes: the default ("detector") and the reference engine's ("wappalyzer")."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli import cli
from detector.engine.cache import cache_path
from detector.engine.match import MODES, Engine
from tests.conftest import TEST_SIGNATURES


def test_modes_are_known_and_default_is_detector(test_engine: Engine) -> None:
    assert MODES == ("detector", "wappalyzer")
    assert test_engine.mode == "detector"
    assert Engine(test_engine.library, mode="wappalyzer").mode == "wappalyzer"


def test_unknown_mode_is_refused(test_engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown engine mode 'bogus'"):
        Engine(test_engine.library, mode="bogus")
    with pytest.raises(ValueError, match="unknown engine mode"):
        Engine.from_directories([TEST_SIGNATURES], mode="bogus")


def test_cache_key_includes_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    a = cache_path([TEST_SIGNATURES], True, True, "detector")
    b = cache_path([TEST_SIGNATURES], True, True, "wappalyzer")
    assert a != b
    first = Engine.from_directories([TEST_SIGNATURES], mode="wappalyzer")
    again = Engine.from_directories([TEST_SIGNATURES], mode="wappalyzer")
    default = Engine.from_directories([TEST_SIGNATURES])
    assert (first.mode, again.mode, default.mode) == ("wappalyzer", "wappalyzer", "detector")
    assert len(list(tmp_path.glob("engine-*.pickle"))) == 2


def test_cli_compat_option(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text('<meta name="generator" content="PressCMS 6.1">')
    runner = CliRunner()
    for extra in ([], ["--compat", "wappalyzer"]):
        result = runner.invoke(cli, ["detect", "--signatures", str(TEST_SIGNATURES), "--html", str(page), "--nl",
                                     *extra])
        assert result.exit_code == 0, result.output
        assert '"PressCMS"' in result.output
    bad = runner.invoke(cli, ["detect", "--compat", "bogus", "--html", str(page)])
    assert bad.exit_code == 2


def test_crawl_worker_takes_the_mode_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    from detector.crawl import worker

    monkeypatch.setattr(worker, "_ENGINE", None)
    monkeypatch.setenv("DETECTOR_COMPAT", "wappalyzer")  # the environment no longer decides
    assert worker.load_engine([str(TEST_SIGNATURES)]).mode == "detector"
    assert worker.load_engine([str(TEST_SIGNATURES)], "wappalyzer").mode == "wappalyzer"
    monkeypatch.setattr(worker, "_ENGINE", None)


def test_crawl_options_refuse_an_unknown_mode() -> None:
    from detector.crawl.runner import CrawlOptions

    assert CrawlOptions(inputs=()).engine_mode == "detector"
    with pytest.raises(ValueError, match="unknown engine mode 'bogus'"):
        CrawlOptions(inputs=(), engine_mode="bogus")
