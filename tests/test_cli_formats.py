"""Output formats of `detect`: --format wappalyzer (Wappalyzer's JSON fields) and --format line
(httpx-style), beside --json and --nl, which stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from detector.cli.main import cli
from tests.conftest import ROOT, TEST_SIGNATURES

SIG = ["--signatures", str(TEST_SIGNATURES)]
CASES = [
    {"id": "one", "url": "https://a.example/", "status": 200, "headers": {"x-press": ["1"]},
     "html": '<meta name="generator" content="PressCMS 6.1">'},
    {"id": "two", "url": None, "status": None, "headers": {}, "html": "<p>Powered by Shopy</p>"},
    {"id": "three", "url": "https://plain.example/", "status": 404, "headers": {}, "html": "<p>nothing</p>"},
]
WORDPRESS = ('<html><head><meta name="generator" content="WordPress 6.4"></head>'
             '<body><script src="/wp-includes/js/jquery/jquery.min.js"></script></body></html>')


def detect(*args: str, input: str | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["detect", *args], input=input)
    return res.exit_code, res.output


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES), encoding="utf-8")
    return path


def test_line_prints_one_httpx_style_line_per_page(cases: Path) -> None:
    code, out = detect(*SIG, "--cases", str(cases), "--format", "line")
    assert code == 0, out
    code, nl = detect(*SIG, "--cases", str(cases), "--nl")
    records = [json.loads(x) for x in nl.splitlines()]
    expected = []
    for r in records:
        techs = sorted(r["technologies"], key=lambda t: t["name"].lower())
        expected.append((r["url"] or r["id"]) + " [" + ",".join(
            t["name"] + (":" + t["version"] if t["version"] else "") for t in techs) + "]")
    assert out.splitlines() == expected
    assert out.splitlines()[0].startswith("https://a.example/ [PHPish,PressCMS:6.1,")
    assert out.splitlines()[1:] == ["two [Shopy]", "https://plain.example/ []"]


def test_wappalyzer_format_carries_the_library_fields(tmp_path: Path) -> None:
    page = tmp_path / "wp.html"
    page.write_text(WORDPRESS, encoding="utf-8")
    code, out = detect("--html", str(page), "--url", "https://blog.example/", "--format", "wappalyzer")
    assert code == 0, out
    [record] = [json.loads(x) for x in out.splitlines()]
    assert record["urls"] == {"https://blog.example/": {"status": None}}
    techs = {t["name"]: t for t in record["technologies"]}
    wp = techs["WordPress"]
    source = yaml.safe_load((ROOT / "signatures" / "cms" / "wordpress.yaml").read_text(encoding="utf-8"))
    categories = yaml.safe_load((ROOT / "signatures" / "categories.yaml").read_text(encoding="utf-8"))
    ids = {c["name"]: int(k) for k, c in categories.items()}
    assert (wp["slug"], wp["version"], wp["confidence"]) == ("wordpress", "6.4", 100)
    assert (wp["website"], wp["icon"], wp["cpe"], wp["description"]) == (
        source["website"], source["icon"], source["cpe"], source["description"])
    assert wp["categories"] == [{"id": ids[c], "slug": c.lower(), "name": c} for c in source["categories"]]
    assert list(wp) == ["slug", "name", "description", "confidence", "version", "icon", "website", "cpe",
                        "categories"]
    # the same technologies as the default JSON, nothing more, nothing less
    code, plain = detect("--html", str(page), "--url", "https://blog.example/", "--json")
    assert set(techs) == {t["name"] for t in json.loads(plain)[0]["technologies"]}


def test_wappalyzer_format_one_object_per_page_with_nulls_for_missing_fields(cases: Path) -> None:
    code, out = detect(*SIG, "--cases", str(cases), "--format", "wappalyzer")
    assert code == 0, out
    records = [json.loads(x) for x in out.splitlines()]
    assert [list(r["urls"].items()) for r in records] == [
        [("https://a.example/", {"status": 200})], [("two", {"status": None})],
        [("https://plain.example/", {"status": 404})]]
    press = next(t for t in records[0]["technologies"] if t["name"] == "PressCMS")
    assert press == {"slug": "presscms", "name": "PressCMS", "description": None, "confidence": 100,
                     "version": "6.1", "icon": None, "website": "https://presscms.example", "cpe": None,
                     "categories": [{"id": 1, "slug": "cms", "name": "CMS"}]}
    assert records[2]["technologies"] == []


@pytest.mark.parametrize(
    ("args", "same_as"),
    [(["--json"], ["--format", "json"]), (["--nl"], ["--format", "nl"]), ([], ["--format", "table"])],
    ids=["json", "nl", "table"],
)
def test_json_and_nl_are_short_forms(cases: Path, args: list[str], same_as: list[str]) -> None:
    assert detect(*SIG, "--cases", str(cases), *args) == detect(*SIG, "--cases", str(cases), *same_as)


@pytest.mark.parametrize(
    "args", [["--json", "--nl"], ["--json", "--format", "line"], ["--nl", "--format", "wappalyzer"]],
    ids=["json-nl", "json-line", "nl-wappalyzer"])
def test_two_formats_at_once_is_a_usage_error(cases: Path, args: list[str]) -> None:
    code, out = detect(*SIG, "--cases", str(cases), *args)
    assert code == 2
    assert "choose one output format" in out


def test_help_documents_the_formats() -> None:
    code, out = detect("--help")
    assert code == 0
    for word in ("--format", "wappalyzer", "line", "Same as --format json"):
        assert word in out


def test_readme_documents_the_formats_and_the_technologies_command() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for needle in ("--format wappalyzer", "--format line", "`detector technologies`", "--technology Shopify"):
        assert needle in text, f"README does not mention {needle}"
    res = CliRunner().invoke(cli, ["technologies", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "--format" in res.output
