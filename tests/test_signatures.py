"""Loading, validation and `signatures check`: every problem named with its file and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.engine.checks import check_library
from detector.engine.signatures import load_signatures
from detector.errors import SignatureError
from tests.conftest import TEST_SIGNATURES

CATS = "1: {name: CMS, priority: 1}\n2: {name: Analytics, priority: 9}\n"


def library(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "categories.yaml").write_text(CATS)
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: A\ncategories: [CMS]\nhtml: [a\n", "invalid YAML"),
        ("categories: [CMS]\nhtml: a\n", "missing `name`"),
        ("name: A\nhtml: a\n", "`categories` is missing"),
        ("name: A\ncategories: [CMS]\nhtlm: a\n", 'unknown field `htlm`; did you mean "html"?'),
        ("name: A\ncategories: [CSM]\n", "unknown category 'CSM'; did you mean \"CMS\"?"),
        ("name: A\ncategories: [CMS]\nimplies: Wordpres\n", "unknown technology 'Wordpres'"),
        ("name: A\ncategories: [CMS]\nheaders: [a]\n", "headers: must be a mapping"),
        ("name: A\ncategories: [CMS]\ndom: {'a': {exist: ''}}\n", "unknown key `exist`"),
    ],
)
def test_load_errors_name_the_file_and_fix(tmp_path: Path, text: str, message: str) -> None:
    lib = library(tmp_path, a=text)
    with pytest.raises(SignatureError) as err:
        load_signatures([lib])
    assert message in str(err.value)
    assert "a.yaml" in str(err.value)


def test_duplicate_names_in_one_directory(tmp_path: Path) -> None:
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\n", b="name: A\ncategories: [CMS]\n")
    with pytest.raises(SignatureError, match="also defined in"):
        load_signatures([lib])


def test_check_reports_bad_regex_with_fix(tmp_path: Path) -> None:
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\nhtml: ['ok', 'bro[ken']\n")
    report = check_library([lib])
    assert len(report.problems) == 1
    p = report.problems[0]
    assert 'a.yaml: "A" html[1]' in p and "invalid regex" in p and 'escape "[" as "\\["' in p


def test_check_runs_examples(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        a=(
            "name: A\ncategories: [CMS]\nmeta: {generator: '^A ([\\d.]+)\\;version:\\1'}\n"
            "examples:\n"
            "  - match: {html: '<meta name=generator content=\"A 1.2\">', version: '1.3'}\n"
            "  - no_match: {html: '<meta name=generator content=\"A 9\">'}\n"
        ),
    )
    problems = check_library([lib]).problems
    assert any("expected version '1.3', got '1.2'" in p for p in problems)
    assert any("the no_match example is detected" in p for p in problems)


def test_check_flags_slow_backtracking(tmp_path: Path) -> None:
    # a lookahead keeps it off RE2; nested unbounded repetition makes Python's re explode
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\nhtml: '(?=x)?(a|aa)+$'\n")
    problems = check_library([lib]).problems
    assert any("catastrophic backtracking" in p for p in problems), problems


def test_test_library_passes_check_with_its_examples() -> None:
    report = check_library([TEST_SIGNATURES])
    assert report.problems == []
    assert report.stats["examples"] == 2


def test_shipped_library_passes_check() -> None:
    report = check_library(None)
    assert report.problems == []
    assert report.stats["technologies"] >= 3588
    assert report.stats["python"] <= 10  # nearly everything runs on RE2 (linear time)


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["signatures", "check", "--signatures", str(TEST_SIGNATURES)])
    assert ok.exit_code == 0, ok.output
    assert "0 problem(s)" in ok.output
    bad = library(tmp_path, a="name: A\ncategories: [CMS]\nhtml: 'x('\n")
    res = runner.invoke(cli, ["signatures", "check", "--signatures", str(bad), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output)["problems"][0].startswith(str(bad / "a.yaml"))


def test_cli_list_and_show() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["signatures", "list", "--signatures", str(TEST_SIGNATURES), "--category", "analytics"])
    assert res.exit_code == 0 and res.output.splitlines() == ["Tracko\tAnalytics"]
    res = runner.invoke(cli, ["signatures", "list", "--signatures", str(TEST_SIGNATURES), "--category", "Analytix"])
    assert res.exit_code == 2 and "did you mean 'Analytics'" in res.output
    res = runner.invoke(cli, ["signatures", "show", "--signatures", str(TEST_SIGNATURES), "presscms"])
    assert res.exit_code == 0 and "name: PressCMS" in res.output and "provenance:" in res.output
    res = runner.invoke(cli, ["signatures", "show", "--signatures", str(TEST_SIGNATURES), "PresCMS"])
    assert res.exit_code == 1 and "did you mean 'PressCMS'" in res.output


def _layered(tmp_path: Path) -> Path:
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\nhtml: old-a\n", b="name: B\ncategories: [CMS]\nhtml: only-b\n")
    (lib / "detector" / "cms").mkdir(parents=True)
    (lib / "detector" / "cms" / "a.yaml").write_text(
        "name: A\ncategories: [Analytics]\nhtml: new-a\nprovenance: 'detector: test'\n"
    )
    (lib / "detector" / "c.yaml").write_text("name: C\ncategories: [CMS]\nhtml: own-c\nprovenance: 'detector: test'\n")
    return lib


def test_layer_replaces_imported_by_name(tmp_path: Path) -> None:
    lib = load_signatures(_layered(tmp_path))
    assert set(lib.signatures) == {"A", "B", "C"}
    a = lib.signatures["A"]
    assert a.rules["html"] == "new-a" and a.categories == ("Analytics",)
    assert a.overrides.endswith("a.yaml") and "detector" not in Path(a.overrides).parts[-2:]
    assert lib.signatures["C"].overrides == "" and lib.signatures["B"].rules["html"] == "only-b"


def test_layer_left_out_without_layers(tmp_path: Path) -> None:
    path = _layered(tmp_path)
    with_layer, without = load_signatures(path), load_signatures(path, layers=False)
    assert set(without.signatures) == {"A", "B"} and without.signatures["A"].rules["html"] == "old-a"
    assert with_layer.version != without.version


def test_layer_names_unique(tmp_path: Path) -> None:
    path = _layered(tmp_path)
    (path / "detector" / "a2.yaml").write_text("name: A\ncategories: [CMS]\nhtml: x\n")
    with pytest.raises(SignatureError, match="also defined in"):
        load_signatures(path)


def test_compat_engine_runs_without_layer(tmp_path: Path) -> None:
    from detector.engine.match import Engine
    from detector.engine.page import Page

    path = _layered(tmp_path)
    page = Page.from_http("https://x.test/", status=200, headers={}, body=b"<p>old-a new-a own-c</p>")
    ours = {d.technology for d in Engine.from_directories([path], cache=False).detect(page)}
    ref = {d.technology for d in Engine.from_directories([path], cache=False, mode="wappalyzer").detect(page)}
    assert ours == {"A", "C"} and ref == {"A"}
    ref_page = Page.from_http("https://x.test/", status=200, headers={}, body=b"<p>old-a</p>")
    assert {d.technology for d in Engine.from_directories([path], cache=False).detect(ref_page)} == set()


def test_show_names_what_a_layer_replaces(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["signatures", "show", "A", "--signatures", str(_layered(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "replaces the imported definition in" in result.output and "new-a" in result.output
