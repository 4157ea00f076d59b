"""The rendered tier: Chromium through the local proxy finds what only a browser sees.

Pages under tests/render/sites/ set globals from an inline script, an external script and a
late setTimeout, build DOM from JS and call an API with fetch; others misbehave (dialogs, an
endless loop, a 1 GB allocation, a script that never arrives, private addresses).  Tests that
need Chromium skip, saying why, where it is not installed (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.crawl.render import Renderer, RenderSettings, unavailable_reason
from detector.demo.vhosts import VirtualHostProxy, load_sites
from detector.engine.browser import RenderAdvisor, StaticTechnology, browser_probes
from detector.engine.match import Engine
from detector.engine.page import Page
from detector.engine.signatures import load_signatures
from detector.store.store import Store
from tests.servers import rows, run_detector, start_proxy

HERE = Path(__file__).resolve().parent / "render"
SIGNATURES = HERE / "signatures"
SITES = HERE / "sites"
BROWSER = unavailable_reason()
needs_browser = pytest.mark.skipif(BROWSER is not None, reason=f"rendered tier cannot run here: {BROWSER}")
RENDERED_SITES = ["inline.test", "external.test", "late.test"]


@pytest.fixture(scope="module")
def proxy() -> Iterator[VirtualHostProxy]:
    server = start_proxy(load_sites(SITES))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_directories([SIGNATURES])


def html_of(host: str) -> str:
    return (SITES / host / "index.html").read_text()


# ---------------------------------------------------------------- engine side (no browser)
def test_js_dom_and_xhr_rules_match_what_a_browser_saw(engine: Engine) -> None:
    page = Page(url="https://a.test/", html='<div class="widgetdom-root" data-widgetdom-version="3.1"></div>',
                js={"InlineStats.version": "2.4.1", "__BUNDLEKIT__.ready": "true"}, xhr=("api.feedapi.test",),
                tier="rendered")
    found = {d.technology: d for d in engine.detect_site([page])}
    assert {n: found[n].version for n in found} == {"InlineStats": "2.4.1", "BundleKit": None, "FeedApi": None,
                                                    "WidgetDom": "3.1"}
    assert all(v.tier == "rendered" for v in found.values())
    ev = found["InlineStats"].to_dict()["evidence"][0]
    assert (ev["source"], ev["key"], ev["tier"]) == ("js", "InlineStats.version", "rendered")
    assert found["InlineStats"].to_dict()["tier"] == "rendered"


def test_static_evidence_keeps_a_detection_static(engine: Engine) -> None:
    static = Page(url="https://a.test/", html='<meta name="generator" content="PressCMS 5">')
    rendered = Page(url="https://a.test/", html='<meta name="generator" content="PressCMS 5">', tier="rendered")
    (d,) = engine.detect_site([static, rendered])
    assert (d.technology, d.tier, d.confidence) == ("PressCMS", "static", 100)  # the pattern counts once
    assert "tier" not in d.to_dict() and d.to_dict()["evidence"][0].get("tier") is None


#: What the static tier sees of those pages: a global the inline code uses by name (the
#: inline_js source), never the value or version only a browser computes.
STATIC_NAMES = {"inline.test": {"InlineStats"}, "late.test": {"LateChat"}}


@pytest.mark.parametrize("host", [*RENDERED_SITES, "plain.test"])
def test_static_tier_does_not_see_them(engine: Engine, host: str) -> None:
    found = {d.technology: d for d in engine.detect_site([Page.from_http(f"http://{host}/", body=html_of(host))])}
    seen = set(found) & {"InlineStats", "BundleKit", "LateChat", "WidgetDom", "FeedApi"}
    assert seen == STATIC_NAMES.get(host, set())
    assert all(not found[name].version for name in seen)


@pytest.mark.parametrize(
    ("host", "found", "expected"),
    [
        ("inline.test", [], "scripts name InlineStats"),
        ("late.test", [], "scripts name LateChat"),
        ("external.test", [], "empty #root"),
        ("plain.test", [StaticTechnology("PressCMS", "5.2")], None),
        ("plain.test", [StaticTechnology("TagBox")], "tag manager TagBox runs and no tags were found"),
    ],
    ids=["inline-global", "late-global", "app-shell", "plain-static", "tag-manager"],
)
def test_auto_advice(host: str, found: list[StaticTechnology], expected: str | None) -> None:
    advisor = RenderAdvisor(load_signatures([SIGNATURES]))
    reasons = advisor.reasons(html_of(host), found)
    assert reasons == ([expected] if expected else [])


TEXT = "<p>" + "Garden furniture made of local oak, finished by hand. " * 6 + "</p>"
PLAIN = f"<html><head><script src='/js/site.js'></script></head><body>{TEXT}</body></html>"
T = StaticTechnology


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([T("ChatPop", confidence=25, sources=frozenset({"html"}))], "ChatPop: confidence 25, js/dom rules can confirm"),
        ([T("ChatPop", confidence=100, sources=frozenset({"html"}))], None),
        ([T("ShopKit")], "ShopKit: version in js rules"),
        ([T("ShopKit", "2.0")], None),  # the version is known already
        ([T("CloudWidget")], None),  # a SaaS script's version is the vendor's
        ([T("InlineStats")], None),  # an analytics script's version alone is not worth a browser
        ([T("TagBox", sources=frozenset({"script_src"}))], "tag manager TagBox runs and no tags were found"),
        ([T("TagBox", sources=frozenset({"html"}))], None),  # a comment or <noscript> frame runs nothing
        ([T("TagBox", sources=frozenset({"inline_js"}))], None),  # nor a global's name in code
        ([T("TagBox", sources=frozenset({"script_src"})), T("InlineStats")], None),  # the page carries its tags
        ([T("TagBox", sources=frozenset({"script_src"})), T("ConsentBox")], None),  # held back until consent
        ([T("PressCMS", "5.2"), T("BundleKit")], None),  # found; nothing a browser adds
    ],
    ids=["candidate", "conclusive", "version", "version-known", "saas-version", "minor-version", "tag-manager",
         "tag-manager-comment", "tag-manager-name", "tags-found", "consent-manager", "found"],
)
def test_each_auto_trigger_fires_only_where_a_render_changes_the_verdict(
        found: list[StaticTechnology], expected: str | None) -> None:
    advisor = RenderAdvisor(load_signatures([SIGNATURES]))
    assert advisor.reasons(PLAIN, found) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<div id='__next'></div><p>Loading</p>", "empty #__next"),
        ("<div id='app'> </div>", "empty #app"),
        ("<div id='app'><h1>Menu</h1></div>" + TEXT, None),  # a mount with content is no shell
        ("<h1>Hello</h1>", "app shell: 5 characters of text"),
    ],
    ids=["empty-next", "empty-app", "filled-mount", "little-text"],
)
def test_app_shell_trigger(body: str, expected: str | None) -> None:
    advisor = RenderAdvisor(load_signatures([SIGNATURES]))
    html = f"<html><head><script src='/js/app.js'></script></head><body>{body}</body></html>"
    assert advisor.reasons(html, []) == ([expected] if expected else [])
    assert advisor.reasons(f"<html><body>{body}</body></html>", []) == (
        [expected] if expected and "#" in expected else [])  # little text without scripts: a plain page


@pytest.mark.parametrize(
    ("head", "named"),
    [
        ("<script>InlineStats.track('x');</script>", True),
        ("<script>window['LateChat'] = {};</script>", True),
        ('<script src="/js/InlineStats.min.js"></script>', True),
        ("<script>var v = config.InlineStats.version;</script>", False),
        ("<script>var u = '/js/InlineStats.js';</script>", False),
        ("<script>var o = {InlineStats: 1};</script>", False),
        ('<script type="application/ld+json">{"InlineStats": {"x": 1}}</script>', False),
        ("<script>var q = search.indexName;</script>", True),  # a plain word with the rule's next segment
        ("<script>window.search = 1;</script>", True),
        ("<script>search.run(q);</script>", False),  # a plain word used as a page's own variable
        ("<script>(function (w, n) { w['InlineStats'] = n; })(window, 'x');</script>", True),  # a loader snippet
        ("<script>var o = {}; o['search'] = 1;</script>", False),
    ],
    ids=["used", "window-index", "script-file", "property", "in-a-url", "object-key", "json-ld", "plain-word-path",
         "plain-word-window", "plain-word", "window-alias", "plain-word-key"],
)
def test_auto_advice_reads_globals_as_code_uses_them(head: str, named: bool) -> None:
    advisor = RenderAdvisor(load_signatures([SIGNATURES]))
    reasons = advisor.reasons(f"<html><head>{head}</head><body>{TEXT}</body></html>", [])
    assert bool(reasons) == named, reasons


def test_probes_cover_the_library() -> None:
    chains, props = browser_probes(load_signatures(None))
    assert "jQuery.fn.jquery" in chains and len(chains) > 2000
    assert ("body > div", "_reactRootContainer") in props


@pytest.mark.parametrize(
    ("url", "proxy", "allow_private", "refused"),
    [
        ("http://shop.test/", None, False, "reserved name"),
        ("http://shop.test/", "http://127.0.0.1:9", False, ""),
        ("http://10.1.2.3/x.js", "http://127.0.0.1:9", False, "private network"),
        ("http://[::ffff:169.254.169.254]/", None, False, "metadata service"),
        ("http://10.1.2.3/x.js", None, True, ""),
        ("file:///etc/passwd", None, True, "not fetched"),
        ("data:text/javascript,1", None, False, ""),
        ("http://api.localhost:8080/", "http://127.0.0.1:9", False, "loopback name"),
    ],
    ids=["reserved-name-no-proxy", "reserved-name-via-proxy", "private-ip", "mapped-metadata", "allowed-private",
         "file-url", "data-url", "localhost-via-proxy"],
)
def test_network_policy(url: str, proxy: str | None, allow_private: bool, refused: str) -> None:
    renderer = Renderer([], [], RenderSettings(proxy=proxy, allow_private=allow_private))
    reason = asyncio.run(renderer._refusal(url))
    assert (refused in reason) if refused else reason == "", reason


# ---------------------------------------------------------------- the browser
def render_all(proxy_url: str, hosts: list[str], **settings: Any) -> tuple[dict[str, Any], list[int], int]:
    chains, props = browser_probes(load_signatures([SIGNATURES]))

    async def go() -> tuple[dict[str, Any], list[int], int]:
        renderer = Renderer(chains, props, RenderSettings(proxy=proxy_url, **settings))
        try:
            snaps = {h: await renderer.render(f"http://{h}/") for h in hosts}
            return snaps, renderer.browser_pids(), renderer.launches
        finally:
            await renderer.close()

    return asyncio.run(go())


@needs_browser
def test_renderer_reads_globals_dom_and_requests(proxy: VirtualHostProxy) -> None:
    snaps, _, _ = render_all(proxy.url, ["inline.test", "external.test", "late.test", "private.test"],
                             timeout=8, settle=0.8)
    assert snaps["inline.test"].js == {"InlineStats.version": "2.4.1"}
    assert snaps["external.test"].js == {"__BUNDLEKIT__.ready": "true"}
    assert 'data-widgetdom-version="3.1"' in snaps["external.test"].html
    assert snaps["external.test"].xhr == ["api.feedapi.test"]
    assert snaps["late.test"].js == {"LateChat.boot": "true"}
    # Private and metadata addresses are refused, even through the proxy.
    refused = snaps["private.test"].refused
    assert [r.split(": ", 1)[1].split(" ", 1)[0] for r in refused] == ["127.0.0.1", "169.254.169.254"]
    assert "metadata service" in refused[1]
    assert all(s.outcome == "rendered" for s in snaps.values())


@needs_browser
def test_hostile_pages_are_closed_at_the_timeout_and_recorded(proxy: VirtualHostProxy) -> None:
    hosts = ["dialog.test", "loop.test", "alloc.test", "never.test", "inline.test"]
    snaps, _, _ = render_all(proxy.url, hosts, timeout=5, settle=0.5)
    dialog = snaps["dialog.test"]
    assert (dialog.outcome, dialog.dialogs, dialog.popups, dialog.js) == (
        "rendered", 2, 1, {"InlineStats.version": "9.9"})
    assert snaps["loop.test"].outcome == "timeout" and snaps["loop.test"].seconds < 5 + 5 + 3
    assert snaps["alloc.test"].outcome in ("crashed", "timeout")
    never = snaps["never.test"]  # on a busy machine the whole-page timeout may come first
    assert never.outcome == "timeout" and ("domcontentloaded" in never.message or "not finished" in never.message)
    assert snaps["inline.test"].outcome == "rendered"  # the browser still works after all that


@needs_browser
def test_a_browser_that_dies_is_started_again(proxy: VirtualHostProxy) -> None:
    chains, props = browser_probes(load_signatures([SIGNATURES]))

    async def go() -> tuple[str, str, int]:
        renderer = Renderer(chains, props, RenderSettings(proxy=proxy.url, timeout=8, settle=0.3))
        try:
            first = await renderer.render("http://inline.test/")
            for pid in renderer.browser_pids():
                os.kill(pid, 9)
            await asyncio.sleep(0.5)
            second = await renderer.render("http://late.test/")
            return first.outcome, second.outcome, renderer.launches
        finally:
            await renderer.close()

    assert asyncio.run(go()) == ("rendered", "rendered", 2)


@needs_browser
def test_a_tab_serves_several_sites_with_cookies_cleared_and_a_bad_page_loses_its_context(
        proxy: VirtualHostProxy) -> None:
    chains, props = browser_probes(load_signatures([SIGNATURES]))

    async def go() -> tuple[list[str], int, list[Any], int, int]:
        renderer = Renderer(chains, props, RenderSettings(proxy=proxy.url, concurrency=1, timeout=4, settle=0.3,
                                                          sites_per_context=3))
        try:
            outcomes = [(await renderer.render("http://cookie.test/")).outcome]
            cookies = await renderer._idle[0].context.cookies() if renderer._idle else ["(no tab kept)"]
            for host in ["inline.test", "late.test"]:
                outcomes.append((await renderer.render(f"http://{host}/")).outcome)
            kept = renderer.contexts  # one context served the three sites...
            # ...then is replaced (sites_per_context=3); a page that times out closes its own
            for host in ["plain.test", "loop.test", "inline.test"]:
                outcomes.append((await renderer.render(f"http://{host}/")).outcome)
            return outcomes, kept, cookies, renderer.contexts, len(renderer._idle)
        finally:
            await renderer.close()

    outcomes, kept, cookies, contexts, idle = asyncio.run(go())
    assert outcomes == ["rendered", "rendered", "rendered", "rendered", "timeout", "rendered"]
    assert kept == 1 and contexts == 3 and idle == 1
    assert cookies == []  # what cookie.test set is gone before the next site


# ---------------------------------------------------------------- crawls
def zombies() -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name, state = raw[raw.find("(") + 1 : raw.rfind(")")], raw[raw.rfind(")") + 2 :].split()[0]
            if state == "Z" and ("chrom" in name or "crashpad" in name):
                out.add(int(entry))
    return out


def crawl(tmp_path: Path, proxy: VirtualHostProxy, mode: str, hosts: list[str], workers: int = 0) -> tuple[Any, Path]:
    domains = tmp_path / "domains.txt"
    domains.write_text("\n".join(hosts) + "\n")
    db = tmp_path / f"{mode}.db"
    # No render budget: these crawls test what the advisor picks, whatever the machine's speed
    # (the budget's own tests are test_a_spent_render_budget_... and tests/test_render_budget.py).
    budget = ["--render-budget", "0"] if mode == "auto" else []
    run = run_detector(["crawl", str(domains), "--db", str(db), "--proxy", proxy.url, "--no-dns", "--signatures", str(SIGNATURES),
                        "--pages", "0", "--workers", str(workers), "--render", mode, "--json", "--no-progress", *budget],
                       timeout=180)
    assert run.code == 0, run.err
    return run, db


def found(db: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows(db, "SELECT domain, technology, version, evidence FROM detections"):
        out.setdefault(r["domain"], {})[r["technology"]] = (r["version"], {e.get("tier", "static")
                                                                            for e in json.loads(r["evidence"])})
    return out


@needs_browser
def test_crawl_auto_renders_what_pays_off_and_skips_plain_pages(tmp_path: Path, proxy: VirtualHostProxy) -> None:
    before = zombies()
    _, db = crawl(tmp_path, proxy, "auto", [*RENDERED_SITES, "plain.test", "shop.test"], workers=1)  # rendered pages pickled
    assert found(db) == {
        # static sees the name in the inline code; the version of an analytics script alone is
        # no reason to render (--render on reads it: test_detect_url_render)
        "inline.test": {"InlineStats": (None, {"static"})},
        # static sees the platform's script; only the browser reads its version
        "shop.test": {"ShopKit": ("2.0.1", {"rendered", "static"})},
        "external.test": {"BundleKit": (None, {"rendered"}), "WidgetDom": ("3.1", {"rendered"}),
                          "FeedApi": (None, {"rendered"})},
        "late.test": {"LateChat": (None, {"static"})},  # found statically, nothing more to read: not rendered
        "plain.test": {"PressCMS": ("5.2", {"static"})},
    }
    scans = {r["domain"]: (r["render"], r["render_note"]) for r in rows(db, "SELECT * FROM scans")}
    assert scans["plain.test"] == (None, None) and scans["late.test"][0] is None
    assert scans["inline.test"] == (None, None)
    assert scans["shop.test"] == ("rendered", "ShopKit: version in js rules")
    assert scans["external.test"][0] == "rendered"
    assert zombies() - before == set()  # the crawl reaped what the browser left


@needs_browser
def test_a_spent_render_budget_keeps_sites_static_and_says_so_until_the_budget_allows(
        tmp_path: Path) -> None:
    shop = load_sites(SITES)["shop.test"]
    copies = {f"shop{n}.test": dataclasses.replace(shop, host=f"shop{n}.test") for n in range(6)}
    server = start_proxy(copies)
    try:
        domains = tmp_path / "domains.txt"
        domains.write_text("".join(f"{h}\n" for h in copies))
        db = tmp_path / "budget.db"
        args = ["crawl", str(domains), "--db", str(db), "--proxy", server.url, "--no-dns", "--signatures",
                str(SIGNATURES), "--pages", "0", "--workers", "0", "--render", "auto", "--no-progress",
                "--render-budget", "0.0001"]  # not one page's worth
        run = run_detector(args, timeout=180)
        assert run.code == 0, run.err
        scans = {r["domain"]: (r["render"], r["render_note"]) for r in rows(db, "SELECT * FROM scans")}
        assert {how for how, _ in scans.values()} == {"skipped"}, scans
        assert {note for _, note in scans.values()} == {
            "over the render budget; would render for: ShopKit: version in js rules"}
        assert "Rendered in Chromium: 6 left static over the render budget" in run.out, run.out
        versions = {r["domain"]: r["version"] for r in rows(db, "SELECT domain, version FROM detections")}
        assert set(versions.values()) == {None}  # only the browser reads ShopKit's version
        with Store.open(db) as store:
            assert store.render_skipped() == frozenset(copies)  # what the next crawl renders first

        again = run_detector([*args[:-1], "0"], timeout=180)  # no budget: every site named renders
        assert again.code == 0, again.err
        latest = rows(db, "SELECT domain, render FROM scans WHERE run_id != (SELECT run_id FROM scans "
                          "ORDER BY started_at LIMIT 1)")
        assert {r["render"] for r in latest} == {"rendered"} and len(latest) == 6
        assert {r["version"] for r in rows(db, "SELECT version FROM detections")} == {"2.0.1"}
        with Store.open(db) as store:
            assert store.render_skipped() == frozenset()
    finally:
        server.stop()


@needs_browser
def test_crawl_off_is_static_only(tmp_path: Path, proxy: VirtualHostProxy) -> None:
    _, db = crawl(tmp_path, proxy, "off", [*RENDERED_SITES, "plain.test"])
    assert found(db) == {"plain.test": {"PressCMS": ("5.2", {"static"})},
                         "inline.test": {"InlineStats": (None, {"static"})}, "late.test": {"LateChat": (None, {"static"})}}
    assert {r["render"] for r in rows(db, "SELECT render FROM scans")} == {None}


def test_crawl_on_without_chromium_names_the_package(tmp_path: Path, proxy: VirtualHostProxy) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("plain.test\n")
    env_before = os.environ.get("DETECTOR_CHROMIUM")
    os.environ["DETECTOR_CHROMIUM"] = str(tmp_path / "no-chromium")
    try:
        on = run_detector(["crawl", str(domains), "--db", str(tmp_path / "on.db"), "--proxy", proxy.url, "--no-dns",
                           "--signatures", str(SIGNATURES), "--pages", "0", "--workers", "0", "--render", "on"])
        auto = run_detector(["crawl", str(domains), "--db", str(tmp_path / "auto.db"), "--proxy", proxy.url, "--no-dns",
                             "--signatures", str(SIGNATURES), "--pages", "0", "--workers", "0", "--render", "auto"])
    finally:
        if env_before is None:
            os.environ.pop("DETECTOR_CHROMIUM", None)
        else:
            os.environ["DETECTOR_CHROMIUM"] = env_before
    assert on.code == 1 and "apt-get install chromium" in on.err, on.err
    assert auto.code == 0, auto.err
    assert auto.err.count("pages are read statically only") == 1, auto.err
    assert found(tmp_path / "auto.db") == {"plain.test": {"PressCMS": ("5.2", {"static"})}}


@needs_browser
def test_detect_url_render(proxy: VirtualHostProxy) -> None:
    base = ["detect", "--proxy", proxy.url, "--signatures", str(SIGNATURES), "--json"]
    on = run_detector([*base, "--render", "on", "http://inline.test/", "http://plain.test/"])
    off = run_detector([*base, "--render", "off", "http://inline.test/"])
    assert on.code == 0 and off.code == 0, on.err + off.err
    pages = {r["url"]: {t["name"]: (t["version"], [e.get("tier", "static") for e in t["evidence"]])
                        for t in r["technologies"]} for r in on.json()}  # type: ignore[union-attr]
    # The rendered DOM shows the generator meta too: evidence of both tiers, the static one first.
    assert pages == {"http://inline.test/": {"InlineStats": ("2.4.1", ["static", "rendered", "rendered"])},
                     "http://plain.test/": {"PressCMS": ("5.2", ["static", "rendered"])}}
    off_found = [{t["name"]: t["version"] for t in r["technologies"]} for r in off.json()]  # type: ignore[union-attr]
    assert off_found == [{"InlineStats": None}]  # named in the inline code; the version needs the browser
