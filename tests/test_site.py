"""Engine.detect_site: a site's pages resolved at once (confidence, versions, excludes, implies, requires)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.crawl.items import FetchedPage
from detector.crawl.worker import detect_site as worker_detect_site
from detector.engine.cases import iter_cases, page_from_case
from detector.engine.match import Detection, Engine
from detector.engine.page import Page
from detector.engine.verdict import MAX_EVIDENCE, SiteDetection
from tests.conftest import TEST_SIGNATURES

SITES = Path(__file__).resolve().parent / "sites"


def page(url: str = "", **parts: Any) -> Page:
    return Page.from_http(url, body=parts.pop("html", ""), **parts)


def site(engine: Engine, *pages: Page) -> dict[str, SiteDetection]:
    return {d.technology: d for d in engine.detect_site(pages)}


GENERATOR = '<meta name="generator" content="PressCMS{}">'
PLUGIN = '<script src="/press-content/plugins/pp/x.js"></script>'

# (what it shows, pages as {url: page parts}, technology, expected (confidence, version), or None for absent)
CASES: list[tuple[str, dict[str, dict[str, Any]], str, tuple[int, str | None] | None]] = [
    ("requires met on another page",
     {"https://a.example/plugin": {"html": PLUGIN}, "https://a.example/": {"html": GENERATOR.format("")}},
     "PressPlugin", (100, None)),
    ("requires met on no page",
     {"https://a.example/plugin": {"html": PLUGIN}, "https://a.example/x": {"html": "<p>nothing</p>"}},
     "PressPlugin", None),
    ("requiresCategory met on another page",
     {"https://a.example/": {"html": "<div data-shopwidget></div>"}, "https://b.myshopy.example/": {}},
     "ShopWidget", (100, None)),
    ("excludes across pages: the excluded one goes",
     {"https://a.example/": {"html": GENERATOR.format("")}, "https://a.example/b": {"html": "<p>Powered by Shopy</p>"}},
     "PressCMS", None),
    ("excludes across pages: the excluder stays",
     {"https://a.example/": {"html": GENERATOR.format("")}, "https://a.example/b": {"html": "<p>Powered by Shopy</p>"}},
     "Shopy", (100, None)),
    ("excludes apply before implies across pages",
     {"https://a.example/": {"html": GENERATOR.format("")}, "https://a.example/b": {"html": "<p>Powered by Shopy</p>"}},
     "PHPish", None),
    ("implied on one page, detected on another: detection wins",
     {"https://a.example/": {"html": GENERATOR.format("")}, "https://a.example/b": {"headers": {"X-Powered-By": "PHPish/7"}}},
     "PHPish", (100, "7")),
    ("implied at the implier's confidence",
     {"https://a.example/": {"html": GENERATOR.format("")}, "https://a.example/b": {}},
     "Zend-ish", (50, None)),
    ("one pattern on three pages counts once",
     {f"https://a.example/{i}": {"script_urls": ["https://tracko.example/t.js"]} for i in range(3)},
     "Tracko", (50, None)),
    ("distinct patterns on different pages add up",
     {"https://a.example/": {"script_urls": ["https://tracko.example/t.js"]},
      "https://a.example/b": {"script_urls": ["https://tracko.example/v2/x.js"]}},
     "Tracko", (80, "modern")),
    ("a pattern counts its best page (two matches on one page, one on another)",
     {"https://a.example/": {"script_urls": ["https://tracko.example/v2/x.js"]},
      "https://a.example/b": {"script_urls": ["https://tracko.example/v2/x.js", "https://tracko.example/v3/y.js"]}},
     "Tracko", (60, "modern")),
    ("version from another page than the first match",
     {"https://a.example/": {"html": "<p>Powered by Shopy</p>"},
      "https://a.example/b": {"html": '<script src="//cdn.shopy.example/s/2.5/app.js"></script>'}},
     "Shopy", (100, "2.5")),
    ("the better version over pages (longer wins)",
     {"https://a.example/": {"html": GENERATOR.format(" 6.1")}, "https://a.example/b": {"html": GENERATOR.format(" 6.1.2")}},
     "PressCMS", (100, "6.1.2")),
    ("the better version over pages (timestamps are no version)",
     {"https://a.example/": {"html": GENERATOR.format(" 6.1")},
      "https://a.example/b": {"html": GENERATOR.format(" 20230101123")}},
     "PressCMS", (100, "6.1")),
]


@pytest.mark.parametrize(("pages", "tech", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("path", ["accelerated", "python"])
def test_site_resolution(pages: dict[str, dict[str, Any]], tech: str, expected: tuple[int, str | None] | None,
                         path: str, test_engine: Engine, test_engine_python: Engine) -> None:
    engine = test_engine if path == "accelerated" else test_engine_python
    found = site(engine, *(page(url, **dict(parts)) for url, parts in pages.items()))
    if expected is None:
        assert tech not in found, found.get(tech)
    else:
        assert tech in found, sorted(found)
        assert (found[tech].confidence, found[tech].version) == expected
    # here the order of pages changes evidence order only (it decides between versions of equal length)
    again = site(engine, *(page(url, **dict(parts)) for url, parts in reversed(pages.items())))
    assert {k: (v.confidence, v.version) for k, v in again.items()} == {k: (v.confidence, v.version) for k, v in found.items()}


def test_evidence_names_each_page(test_engine: Engine) -> None:
    found = site(test_engine, page("https://a.example/", html=GENERATOR.format(" 6")),
                 page("https://a.example/b", script_urls=["https://tracko.example/t.js"]),
                 page("https://a.example/c", script_urls=["https://tracko.example/t.js"], html=PLUGIN))
    assert [(e["page"], e["source"]) for e in found["PressCMS"].evidence] == [("https://a.example/", "meta")]
    # Tracko: the match that counted first, the repeat on page c marked as not counted
    tracko = found["Tracko"].evidence
    assert [(e["page"], e.get("counted", True)) for e in tracko] == [("https://a.example/b", True),
                                                                       ("https://a.example/c", False)]
    assert [e["page"] for e in found["PressPlugin"].evidence] == ["https://a.example/c"]
    # implied technologies name the page their implier was found on
    assert [(e["source"], e["match"], e["page"]) for e in found["PHPish"].evidence] == [
        ("implied", "PressCMS", "https://a.example/")]
    assert found["Zend-ish"].evidence[0]["page"] == "https://a.example/"
    many = site(test_engine, *(page(f"https://a.example/{i}", script_urls=["https://tracko.example/t.js"])
                               for i in range(20)))
    assert len(many["Tracko"].evidence) == MAX_EVIDENCE
    assert [t for t in site(test_engine)] == []


def _chain_library(tmp_path: Path, length: int) -> Path:
    (tmp_path / "categories.yaml").write_text("1: {name: CMS, priority: 1}\n2: {name: Widgets, priority: 5}\n")
    (tmp_path / "t0.yaml").write_text("name: Link0\ncategories: [CMS]\nhtml: 'chain-marker-0'\nprovenance: test\n")
    for i in range(1, length):
        (tmp_path / f"t{i}.yaml").write_text(
            f"name: Link{i}\ncategories: [CMS]\nrequires: Link{i - 1}\nhtml: 'chain-marker-{i}'\nprovenance: test\n")
    # and one needing a category only the end of the chain brings
    (tmp_path / "w.yaml").write_text(
        "name: EndWidget\ncategories: [Widgets]\nrequiresCategory: CMS\nhtml: 'chain-widget'\nprovenance: test\n")
    return tmp_path


@pytest.mark.parametrize("length", [2, 6, 9])
def test_requires_chains_longer_than_five_rounds(tmp_path: Path, length: int) -> None:
    engine = Engine.from_directories([_chain_library(tmp_path, length)], cache=False)
    markers = [f"<p>chain-marker-{i}</p>" for i in range(length)]
    want = {f"Link{i}" for i in range(length)} | {"EndWidget"}
    # all on one page, newest link first (so each round can only unlock the next link) ...
    one = page("https://a.example/", html="".join(reversed(markers)) + "<p>chain-widget</p>")
    assert {d.technology for d in engine.detect(one)} == want
    # ... and one link per page, in reverse order
    pages = [page(f"https://a.example/{i}", html=m) for i, m in reversed(list(enumerate(markers)))]
    pages.append(page("https://a.example/w", html="<p>chain-widget</p>"))
    assert set(site(engine, *pages)) == want
    # a broken chain stops where it breaks
    k = length // 2
    broken = [p for p in pages if p.url != f"https://a.example/{k}"]
    assert set(site(engine, *broken)) == {f"Link{i}" for i in range(k)} | {"EndWidget"}


def test_worker_resolves_the_site_at_once(test_engine: Engine) -> None:
    fetched = [FetchedPage("https://a.example/p", 200, {}, PLUGIN.encode()),
               FetchedPage("https://a.example/", 200, {"content-type": ["text/html; charset=hex"]},
                           GENERATOR.format(" 6.1").encode())]
    found = {d.technology: d for d in worker_detect_site(fetched, test_engine)}
    assert found["PressCMS"].version == "6.1"
    assert found["PressPlugin"].evidence[0]["page"] == "https://a.example/p"


# ---------------------------------------------------------------- detect(page) == detect_site([page])
def as_site(detections: list[Detection], url: str) -> list[SiteDetection]:
    """What a one-page site verdict must be, from Engine.detect's detections of that page."""
    return sorted(
        (SiteDetection(d.technology, d.version, d.confidence, d.categories,
                       tuple({"page": url, **e.to_dict()} for e in d.evidence)[:MAX_EVIDENCE])
         for d in detections),
        key=lambda s: s.technology.lower(),
    )


def assert_same(engine: Engine, p: Page, label: str) -> None:
    one = engine.detect_site([p])
    assert one == as_site(engine.detect(p), p.url), label
    # the same page twice is the same verdict (nothing counted twice)
    twice = engine.detect_site([p, p])
    assert [(d.technology, d.version, d.confidence) for d in twice] == \
        [(d.technology, d.version, d.confidence) for d in one], label


def fixture_pages() -> Iterator[tuple[str, Page]]:
    """Every page the test sites serve (files and route bodies), with their route's headers."""
    for folder in sorted(SITES.glob("*.test")):
        spec = json.loads((folder / "_site.json").read_text()) if (folder / "_site.json").exists() else {}
        routes: dict[str, Any] = spec.get("routes", {})
        bodies: dict[str, bytes] = {}
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.name != "_site.json":
                rel = "/" + f.relative_to(folder).as_posix()
                bodies[rel[: -len("index.html")] if rel.endswith("/index.html") else rel] = f.read_bytes()
        for path, route in routes.items():
            if isinstance(route.get("body"), str):
                bodies.setdefault(path, route["body"].encode())
        for path, body in bodies.items():
            headers = routes.get(path, {}).get("headers", {})
            yield f"{folder.name}{path}", Page.from_http(f"https://{folder.name}{path}", headers=headers, body=body)


def test_one_page_site_is_detect_on_fixtures(engine: Engine, test_engine: Engine) -> None:
    from tests.test_engine import SOURCE_KINDS

    pages = list(fixture_pages())
    assert len(pages) > 10
    for parts, *_ in SOURCE_KINDS:
        parts = dict(parts)
        pages.append((str(parts), page(parts.pop("url", ""), **parts)))
    pages.append(("generator+plugin", page("https://a.example/", html=GENERATOR.format(" 6") + PLUGIN,
                                           headers={"X-Powered-By": "PHPish/8"})))
    for label, p in pages:
        assert_same(engine, p, label)
        assert_same(test_engine, p, label)
    assert any(engine.detect(p) for _, p in pages) and any(test_engine.detect(p) for _, p in pages)


def test_one_page_site_is_detect_on_corpus(engine: Engine, corpus: Path) -> None:
    cases = [c for i, c in enumerate(iter_cases(corpus)) if i % 6 == 0]
    assert len(cases) > 50
    for case in cases:
        assert_same(engine, page_from_case(case), str(case["id"]))


def test_tests_library_is_used() -> None:
    assert (TEST_SIGNATURES / "misc" / "pressplugin.yaml").exists()
