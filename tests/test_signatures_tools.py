"""The tools that keep the library fresh: selector parsing in `check`, `signatures test`, `signatures coverage`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from detector.cli.main import cli
from detector.engine.checks import check_library, run_examples
from detector.engine.signatures import load_signatures

CATS = "1: {name: CMS, priority: 1}\n2: {name: Analytics, priority: 9}\n"


def library(tmp_path: Path, layer: dict[str, str] | None = None, **files: str) -> Path:
    (tmp_path / "categories.yaml").write_text(CATS)
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    for name, text in (layer or {}).items():
        (tmp_path / "detector" / "analytics").mkdir(parents=True, exist_ok=True)
        (tmp_path / "detector" / "analytics" / f"{name}.yaml").write_text(text)
    return tmp_path


def test_check_rejects_a_selector_lexbor_cannot_parse(tmp_path: Path) -> None:
    # the shape of the imported Airtable rule: a quote closed one attribute too late
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\ndom: \"p.ok, a[href*='//a.example/][target='_blank']\"\n")
    problems = check_library([lib], timing=False).problems
    assert len(problems) == 1, problems
    assert 'a.yaml: "A" dom[' in problems[0] and "lexbor cannot parse it" in problems[0]
    assert "a quoted value is not closed in \"a[href*='//a.example/][target='_blank']\"" in problems[0]


def test_check_rejects_a_typo_attribute(tmp_path: Path) -> None:
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\ndom: {\"iframe[scr*='x.example']\": {exists: ''}}\n")
    problems = check_library([lib], timing=False).problems
    assert problems == [(f'{lib / "a.yaml"}: "A" dom["iframe[scr*=\'x.example\']"]: '
                         "attribute `scr` is a typo: it never matches; write `src`")]


def test_check_names_the_jquery_pseudo_class(tmp_path: Path) -> None:
    lib = library(tmp_path, a="name: A\ncategories: [CMS]\ndom: 'div:contains(Powered)'\n")
    (problem,) = check_library([lib], timing=False).problems
    assert "`:contains` in 'div:contains(Powered)' is jQuery, not CSS" in problem


SNIPPET = "<script>(function(){var s=document.createElement('script');s.src='https://cdn.tracko.example/t.js';document.head.appendChild(s)})();</script>"


def test_layer_examples_run_in_the_default_mode(tmp_path: Path) -> None:
    # An inline loader snippet is only seen by the default mode's script_loader source.
    own = (
        "name: Tracko\ncategories: [Analytics]\nscriptSrc: '(?:^|[/.])cdn\\.tracko\\.example/'\nprovenance: 'detector: test'\n"
        "examples:\n"
        f"  - match: {{html: \"{SNIPPET}\"}}\n"
        "  - no_match: {html: '<a href=\"https://www.tracko.example/\">Tracko</a>'}\n"
    )
    imported = own.replace("Tracko", "Other").replace("tracko", "other").replace("detector: test", "imported")
    lib = load_signatures(library(tmp_path, layer={"tracko": own}, other=imported))
    results = {(r.technology, r.expect): r for r in run_examples(lib)}
    assert results["Tracko", "match"].ok and results["Tracko", "match"].mode == "detector"
    assert any("script_loader" in e for e in results["Tracko", "match"].evidence)
    assert results["Tracko", "no_match"].ok
    # the same example on an imported signature runs in the reference's mode, which has no loader source
    assert results["Other", "match"].mode == "wappalyzer" and not results["Other", "match"].ok


def test_cli_test_shows_failures_and_exits_1(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        a="name: A\ncategories: [CMS]\nhtml: alpha\nexamples:\n  - match: {html: '<p>alpha</p>'}\n  - no_match: {html: '<p>beta</p>'}\n",
        b="name: B\ncategories: [CMS]\nhtml: beta\nexamples:\n  - match: {html: '<p>gamma</p>'}\n  - no_match: {html: '<p>beta</p>'}\n",
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["signatures", "test", "--signatures", str(lib)])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[0] == f'FAIL {lib / "b.yaml"}: "B" examples[0] match (wappalyzer mode): the match example is not detected; fix the pattern or the example'
    assert lines[1] == f'FAIL {lib / "b.yaml"}: "B" examples[1] no_match (wappalyzer mode): the no_match example is detected; tighten the pattern'
    assert lines[2] == '       html: "beta" matched /beta/'
    assert lines[-1] == "4 examples of 2 technologies: 2 passed, 2 failed"
    ok = runner.invoke(cli, ["signatures", "test", "--signatures", str(lib), "a"])
    assert ok.exit_code == 0 and ok.output.splitlines() == ["2 examples of 1 technologies: 2 passed, 0 failed"]
    js = runner.invoke(cli, ["signatures", "test", "--signatures", str(lib), "--json", "B"])
    assert js.exit_code == 1
    assert [(r["technology"], r["expect"], r["ok"]) for r in json.loads(js.output)] == [("B", "match", False), ("B", "no_match", False)]
    unknown = runner.invoke(cli, ["signatures", "test", "--signatures", str(lib), "Bee"])
    assert unknown.exit_code == 1 and "no technology named 'Bee'" in unknown.output


def test_cli_coverage_reports_each_name(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        layer={"tracko": "name: Tracko\ncategories: [Analytics]\nscriptSrc: tracko\\.example\nprovenance: 'detector: t'\n"
                         "examples:\n  - match: {html: '<script src=\"https://tracko.example/t.js\"></script>'}\n"},
        a="name: Acme Pages\ncategories: [CMS]\ndescription: Acme Pages (formerly Pagely) hosts pages.\nhtml: acme\n",
        b="name: Jsonly\ncategories: [Analytics]\njs: {jsonly: ''}\n",
    )
    text = "technology,owner\nTRACKO,ann\nPagely,bob\nJsonly,cy\nTrakco,dee\n\n# done\n"
    res = CliRunner().invoke(cli, ["signatures", "coverage", "--signatures", str(lib), "-"], input=text)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "TRACKO (= Tracko)\tstatic\tkinds: scriptSrc\texamples: 1, own rules",
        "Pagely\tMISSING; did you mean 'Acme Pages'?",
        "Jsonly\tNEEDS A BROWSER\tkinds: js\texamples: 0",
        "Trakco\tMISSING; did you mean 'Tracko'?",
        "4 names: 2 in the library, 1 seen by a crawler without JavaScript, 1 need a browser, 2 missing",
    ]
    js = CliRunner().invoke(cli, ["signatures", "coverage", "--signatures", str(lib), "--json", "-"], input="jsonly\n")
    (row,) = json.loads(js.output)
    assert row["name"] == "Jsonly" and row["needs_browser"] is True and row["kinds"] == ["js"] and row["line"] == 1
    empty = CliRunner().invoke(cli, ["signatures", "coverage", "--signatures", str(lib), "-"], input="\n# none\n")
    assert empty.exit_code == 1 and "no technology names found" in empty.output
