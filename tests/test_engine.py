"""The engine on the hand-written library: every source kind, every semantic, evidence."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from detector.engine.match import Detection, Engine, selector_literals
from detector.engine.page import Page


def detect(engine: Engine, **page: Any) -> dict[str, Detection]:
    html = page.pop("html", "")
    return {d.technology: d for d in engine.detect(Page.from_http(page.pop("url", ""), body=html, **page))}


# (page parts, technology expected, version expected, evidence source expected)
SOURCE_KINDS = [
    ({"html": '<meta name="generator" content="PressCMS 6.1">'}, "PressCMS", "6.1", "meta"),
    ({"html": '<link rel="stylesheet" href="/press-content/a.css">'}, "PressCMS", None, "html"),
    ({"headers": {"X-Press": "1"}}, "PressCMS", None, "header"),
    ({"headers": {"Set-Cookie": "press_session=abc; Path=/"}}, "PressCMS", None, "cookie"),
    ({"cookies": {"press_session": "abc"}}, "PressCMS", None, "cookie"),
    ({"headers": {"x-powered-by": "PHPish/8.2"}}, "PHPish", "8.2", "header"),
    ({"html": '<script src="//cdn.shopy.example/s/2.5/app.js"></script>', "url": "https://a.example/"},
     "Shopy", "2.5", "script_src"),
    ({"script_urls": ["https://cdn.shopy.example/s/3.0/x.js"]}, "Shopy", "3.0", "script_src"),
    ({"url": "https://store.myshopy.example/cart"}, "Shopy", None, "url"),
    ({"html": "<body><p>Powered by Shopy</p></body>"}, "Shopy", None, "text"),
    ({"html": "<script>tracko.init('x')</script>"}, "Tracko", None, "script"),
    ({"html": "<style>.tracko-badge{}</style>"}, "Tracko", None, "css"),
    ({"html": '<div id="tracko-root" data-version="3.2"></div>'}, "Tracko", "3.2", "dom"),
    ({"html": '<span class="tracko-label">Tracked by Tracko</span>'}, "Tracko", None, "dom"),
    ({"html": '<link rel="stylesheet" href="https://domonly.example/a.css">'}, "DomOnly", None, "dom"),
]


@pytest.mark.parametrize(("parts", "tech", "version", "source"), SOURCE_KINDS)
@pytest.mark.parametrize("path", ["accelerated", "python"])
def test_each_source_kind(
    parts: dict[str, Any], tech: str, version: str | None, source: str, path: str,
    test_engine: Engine, test_engine_python: Engine,
) -> None:
    engine = test_engine if path == "accelerated" else test_engine_python
    found = detect(engine, **dict(parts))
    assert tech in found, f"{tech} not detected from {parts}"
    d = found[tech]
    assert d.version == version
    assert any(e.source == source for e in d.evidence), d.evidence
    # every piece of evidence says where (and, unless it is a presence test, which pattern)
    assert all(e.source and (e.pattern or e.key) for e in d.evidence if e.source != "implied")
    assert all(e.describe() for e in d.evidence)


def test_negative_cases(test_engine: Engine) -> None:
    assert detect(test_engine, html="<p>PressCMS is mentioned in text only</p>") == {}
    assert "Tracko" not in detect(test_engine, html='<span class="tracko-label">Not it</span>')
    # a DOM attribute pattern that does not match the value
    assert "Tracko" not in detect(test_engine, html='<div id="tracko-root" data-version="beta"></div>')
    # header names are matched exactly (case-insensitively), values by pattern
    assert "PHPish" not in detect(test_engine, headers={"x-powered-by": "ASP.NET"})


def test_confidences_add_up_and_cap(test_engine: Engine) -> None:
    one = detect(test_engine, script_urls=["https://tracko.example/t.js"])
    assert one["Tracko"].confidence == 50
    two = detect(test_engine, script_urls=["https://tracko.example/t.js", "https://tracko.example/v2/x.js"])
    assert two["Tracko"].confidence == 80
    three = detect(test_engine, html="<style>.tracko-badge{}</style>", script_urls=["https://tracko.example/t.js"])
    assert three["Tracko"].confidence == 100


def test_ternary_version(test_engine: Engine) -> None:
    found = detect(test_engine, script_urls=["https://tracko.example/v3/x.js"])
    assert found["Tracko"].version == "modern"


def test_implies_chain_with_confidence(test_engine: Engine) -> None:
    found = detect(test_engine, html='<meta name="generator" content="PressCMS">')
    # PressCMS implies PHPish at confidence 50, PHPish implies Zend-ish: the chain keeps 50
    assert found["PHPish"].confidence == 50
    assert found["PHPish"].implied_by == ("PressCMS",)
    assert found["Zend-ish"].confidence == 50
    assert found["Zend-ish"].implied_by == ("PHPish",)
    assert found["Zend-ish"].evidence[0].describe() == "implied by PHPish"


def test_detected_technology_is_not_overridden_by_implication(test_engine: Engine) -> None:
    found = detect(test_engine, html='<meta name="generator" content="PressCMS">', headers={"X-Powered-By": "PHPish/7"})
    assert found["PHPish"].confidence == 100 and found["PHPish"].version == "7"
    assert found["PHPish"].implied_by == ()


def test_requires_only_after_prerequisite(test_engine: Engine) -> None:
    plugin = '<script src="/press-content/plugins/pp/x.js"></script>'
    assert "PressPlugin" not in detect(test_engine, html=plugin)
    found = detect(test_engine, html=plugin + '<meta name="generator" content="PressCMS">')
    assert "PressPlugin" in found


def test_requires_category(test_engine: Engine) -> None:
    assert "ShopWidget" not in detect(test_engine, html="<div data-shopwidget></div>")
    found = detect(test_engine, html="<div data-shopwidget></div>", url="https://a.myshopy.example/")
    assert "ShopWidget" in found


def test_excludes(test_engine: Engine) -> None:
    found = detect(test_engine, html='<meta name="generator" content="PressCMS"><p>Powered by Shopy</p>')
    assert "Shopy" in found and "PressCMS" not in found
    # excludes are applied before implies, so what PressCMS implies is not reported either
    assert "PHPish" not in found


def test_browser_rules_are_counted_not_run(test_engine: Engine) -> None:
    stats = test_engine.stats()
    assert stats.browser_rules == 1  # DomOnly's js rule
    assert "DomOnly" not in detect(test_engine, html="<script>DomOnly={version:'1'}</script>")


def test_evidence_names_the_page_url(test_engine: Engine) -> None:
    found = detect(test_engine, url="https://x.example/", html='<meta name="generator" content="PressCMS 2">')
    ev = found["PressCMS"].evidence[0]
    assert (ev.source, ev.key, ev.url, ev.match) == ("meta", "generator", "https://x.example/", "PressCMS 2")
    assert found["PressCMS"].to_dict()["evidence"][0]["pattern"] == "^PressCMS(?: ([\\d.]+))?"


def test_later_directory_overrides_by_name(tmp_path: Any) -> None:
    from tests.conftest import TEST_SIGNATURES

    (tmp_path / "categories.yaml").write_text("1: {name: CMS, priority: 1}\n")
    (tmp_path / "press.yaml").write_text(
        "name: PressCMS\ncategories: [CMS]\nhtml: 'only-this-marker'\nprovenance: override test\n"
    )
    engine = Engine.from_directories([TEST_SIGNATURES, tmp_path])
    assert "PressCMS" not in detect(engine, html='<meta name="generator" content="PressCMS">')
    assert "PressCMS" in detect(engine, html="<p>only-this-marker</p>")


def test_accelerated_and_python_paths_agree_on_fixtures(test_engine: Engine, test_engine_python: Engine) -> None:
    for parts, *_ in SOURCE_KINDS:
        a = [d.to_dict() for d in test_engine.detect(Page.from_http(parts.get("url", ""), body=parts.get("html", ""),
             headers=parts.get("headers"), cookies=parts.get("cookies"), script_urls=parts.get("script_urls", ())))]
        b = [d.to_dict() for d in test_engine_python.detect(Page.from_http(parts.get("url", ""), body=parts.get("html", ""),
             headers=parts.get("headers"), cookies=parts.get("cookies"), script_urls=parts.get("script_urls", ())))]
        assert a == b


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("link[href*='wp-content']", {"wp-content"}),
        ("div#tracko-root", {"tracko-root"}),
        ("body", None),  # implicit elements need not occur in the source
        ("a[href*='x\\.example']", {"x.example"}),
        ("div:not(.skipme) > span.keep", {"keep"}),
        ("img, body", None),
    ],
)
def test_selector_literals(selector: str, expected: set[str] | None) -> None:
    got = selector_literals(selector)
    assert (set(got) if got else None) == expected


def test_engine_core_does_not_import_scrapy() -> None:
    code = (
        "import sys, detector.engine, detector.engine.match, detector.engine.page, detector.engine.signatures,"
        " detector.engine.patterns, detector.engine.site, detector.engine.verdict;"
        "bad = [m for m in ('scrapy', 'sqlite3', 'sqlite_utils', 'click', 'twisted') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_page_decoding() -> None:
    page = Page.from_http("", headers={"Content-Type": "text/html; charset=iso-8859-1"}, body="café".encode("latin-1"))
    assert page.html == "café"
    page = Page.from_http("", body=b'<meta charset="windows-1252"><p>\x93hi\x94</p>')
    assert "\u201chi\u201d" in page.html
    page = Page.from_http("", body=b"\xff\xfeh\x00i\x00")
    assert page.html == "hi"
    page = Page.from_http("", body=b"caf\xe9 without a charset")
    assert page.html.startswith("café")


@pytest.mark.parametrize(
    "body",
    [
        "<div>" * 200_000 + "x" + "</div>" * 200_000,  # HTML5 tree building is quadratic in depth
        "<p>x" * 100_000,
        "".join(f'<script src="/s{i}.js"></script>' for i in range(20_000)),
        "<html>" + "a" * 5_000_000,
    ],
    ids=["deep-nesting", "many-paragraphs", "many-scripts", "one-huge-line"],
)
def test_hostile_pages_stay_bounded(engine: Engine, body: str) -> None:
    import time

    start = time.process_time()
    engine.detect(Page.from_http("https://x.example/", body=body))
    assert time.process_time() - start < 5.0


def test_binary_and_broken_bodies(engine: Engine) -> None:
    import random

    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(200_000))
    assert engine.detect(Page.from_http("https://x.example/", body=junk)) == []
    found = engine.detect(Page.from_http("", body='<p>\udcff</p><script src="/\ud800/jquery.js"></script>'))
    assert [d.technology for d in found] == ["jQuery"]
