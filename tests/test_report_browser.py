"""The report in headless Chromium: charts drawn, no console errors, no request, search works,
on a desktop and a phone viewport, and printable.

The database is crawled from the demo's sites on a local proxy (``detector demo``), its accounts
imported and segmented with the example rules, then one hostile scan is added through the
Store.  Every request the page makes is routed: only ``file:`` and ``data:`` URLs may pass.
The browser test skips, saying why, where Playwright or Chromium is missing (.ci/run installs
both); the page's own count of bars is checked against the database without a browser too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from detector.crawl.render import CHROMIUM_ARGS, find_chromium, unavailable_reason
from detector.engine.verdict import SiteDetection
from detector.store.scans import ScanResult
from detector.store.store import Store
from detector.timestamps import utc_now
from tests.servers import ROOT, rows, run_detector
from tests.test_report import Page as HtmlPage

BROWSER = unavailable_reason()
needs_browser = pytest.mark.skipif(BROWSER is not None, reason=f"the report cannot be rendered here: {BROWSER}")

EVIL_TECH = '<script>alert("x")</script>Evil'
EVIL_DOMAIN = "evil-<img src=x onerror=alert(1)>.test"
ACCOUNTS = """\
Company,Website,Industry,Employees,Country
Acme Outdoor,https://www.acme-outdoor.test/,Retail,120,US
Woo Pottery,woo-pottery.test,Retail,25,GB
Northwind Blog,northwind-blog.test,Media,12,US
Cloudly,cloudly.test,Software,400,DE
Gone Bankrupt,gone-bankrupt.test,Retail,30,US
Nextdash,nextdash.test,Software,80,US
Railsbank,railsbank.test,Finance,900,GB
Docs Forge,docs-forge.test,Software,40,DE
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A report of a database crawled from local sites, segmented, with one hostile scan."""
    here = tmp_path_factory.mktemp("report")
    db = here / "detector.db"
    (here / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    for args in (["demo", "--db", str(db)],
                 ["accounts", "import", str(here / "accounts.csv"), "--db", str(db)],
                 ["segment", "--rules", str(ROOT / "examples" / "rules.yaml"), "--db", str(db)]):
        done = run_detector(args, timeout=300)
        assert done.code == 0, (args, done.err[-2000:])
    now = utc_now()
    with Store.open(db) as store:
        store.record_scans([ScanResult(
            domain=EVIL_DOMAIN, run_id="hostile", started_at=now, finished_at=now, status="ok", pages=1,
            detections=(SiteDetection(EVIL_TECH, '"><svg onload=alert(2)>', 100, ("<b>Cat</b>",), ()),))])
    out = here / "report.html"
    done = run_detector(["report", "--db", str(db), "-o", str(out)])
    assert done.code == 0, done.err
    yield out


@dataclass
class Seen:
    """What the page did: console messages, page errors, dialogs and every request."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


#: Per chart: its bars, each bar's box, the chart's box.
CHARTS = """() => Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const fig = svg.closest('figure');
  const box = svg.getBoundingClientRect();
  return {id: fig ? fig.id : '', width: box.width, height: box.height,
          bars: Array.from(svg.querySelectorAll('rect.bar')).map(r => {
            const b = r.getBoundingClientRect(); return [b.width, b.height]; })};
})"""
VISIBLE_ROWS = """() => Array.from(document.querySelectorAll('#domains tbody tr'))
  .filter(r => r.offsetParent !== null).map(r => r.querySelector('td').textContent)"""


def expected_bars(db: Path) -> dict[str, int]:
    """Bars each chart must draw, counted by SQL of our own on the database."""
    def one(sql: str) -> int:
        return int(rows(db, sql)[0]["n"])

    return {
        "fig-technologies": min(15, one("select count(distinct technology) n from detections where status = 'active'")),
        "fig-categories": min(15, one("select count(distinct c.value) n from detections d, json_each(d.categories) c "
                                      "where d.status = 'active'")),
        # Everything happened this week: one bar per kind that happened.
        "fig-changes": one("select count(distinct kind) n from changes where kind in ('added', 'removed')"),
        "fig-outcomes": one("select (select count(*) > 0 from domains where last_status = 'ok') + "
                            "(select count(distinct s.error_kind) from domains d join scans s on s.domain = d.domain "
                            "where d.last_status = 'error') n"),
        "fig-ages": one("select (sum(last_ok_at is not null) > 0) + (sum(last_ok_at is null) > 0) n from domains"),
        "fig-cohorts-default": one(
            "select count(*) n from (select distinct cohort, case when stale then 's' else coalesce(tier, 'n') end "
            "from cohort_members)"),
    }


def render(report: Path, shots: Path) -> tuple[Seen, dict[str, Any]]:
    """Open the report on a desktop and a phone viewport; measure, search, screenshot, print."""
    from playwright.async_api import Page, Route, async_playwright

    seen = Seen()
    found: dict[str, Any] = {}

    async def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            await route.continue_()
        else:
            seen.refused.append(url)
            await route.abort()

    def watch(page: Page) -> None:
        page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                else None)
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))

    async def search(page: Page, text: str) -> tuple[list[str], str]:
        await page.fill("#q", text)
        return await page.evaluate(VISIBLE_ROWS), await page.inner_text("#shown")

    async def go() -> None:
        async with async_playwright() as pw:
            # Any request that slipped past the route would meet a dead proxy on loopback and no DNS.
            browser = await pw.chromium.launch(
                executable_path=find_chromium(), headless=True,
                args=[*CHROMIUM_ARGS, "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"])
            try:
                for name, options in (("desktop", {"viewport": {"width": 1280, "height": 900}}),
                                      ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                                                 "has_touch": True, "device_scale_factor": 2})):
                    context = await browser.new_context(**options)
                    await context.route("**/*", guard)
                    page = await context.new_page()
                    watch(page)
                    await page.goto(report.as_uri(), wait_until="load")
                    result: dict[str, Any] = {"charts": await page.evaluate(CHARTS)}
                    result["overflow"] = await page.evaluate(
                        "() => document.documentElement.scrollWidth - window.innerWidth")
                    result["all"] = await search(page, "")
                    result["one"] = await search(page, "WOO-pottery")
                    result["errors"] = await search(page, "error:")
                    result["two_words"] = await search(page, "dns  Error:")
                    result["evil"] = await search(page, "<script>")
                    result["none"] = await search(page, "no-such-thing")
                    await search(page, "")
                    await page.screenshot(path=str(shots / f"report-{name}.png"), full_page=True)
                    found[name] = result
                    if name == "desktop":
                        await page.emulate_media(media="print")
                        found["print_search"] = await page.evaluate(
                            "() => getComputedStyle(document.getElementById('search')).display")
                        await page.pdf(path=str(shots / "report.pdf"), format="A4")
                    await context.close()
            finally:
                await browser.close()

    asyncio.run(go())
    return seen, found


def test_report_of_a_crawled_database_draws_its_data(report: Path) -> None:
    page = HtmlPage(report.read_text(encoding="utf-8"))
    expected = expected_bars(report.parent / "detector.db")
    assert {fig: len(page.bars(fig)) for fig in expected} == expected
    shown = "".join(page.text)
    assert EVIL_TECH in shown and EVIL_DOMAIN in shown and EVIL_TECH not in report.read_text(encoding="utf-8")


@needs_browser
def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    db = report.parent / "detector.db"
    seen, found = render(report, tmp_path)
    assert seen.console == [] and seen.errors == [] and seen.dialogs == []
    assert seen.refused == []
    assert seen.requests and all(u.startswith(("file:", "data:")) for u in seen.requests), seen.requests
    expected = expected_bars(db)
    domains = [r["domain"] for r in rows(db, "select domain from domains order by domain")]
    failing = [r["domain"] for r in rows(db, "select domain from domains where last_status = 'error' order by domain")]
    dns = [r["domain"] for r in rows(db, "select d.domain from domains d join scans s on s.domain = d.domain "
                                         "where d.last_status = 'error' and s.error_kind = 'dns' order by d.domain")]
    for name in ("desktop", "phone"):
        result = found[name]
        charts = {c["id"]: c for c in result["charts"]}
        assert set(charts) == set(expected), name
        for fig, n in expected.items():
            chart = charts[fig]
            assert chart["width"] > 100 and chart["height"] > 20, (name, fig, chart)
            assert len(chart["bars"]) == n, (name, fig, chart["bars"])
            assert all(w > 0 and h > 0 for w, h in chart["bars"]), (name, fig)
        assert result["overflow"] <= 0, f"{name}: the page is wider than the screen"
        assert result["all"] == (domains, f"{len(domains)} of {len(domains)} shown")
        assert result["one"] == (["woo-pottery.test"], f"1 of {len(domains)} shown")
        assert result["errors"][0] == failing and failing
        assert result["two_words"][0] == dns and dns
        assert result["evil"][0] == [EVIL_DOMAIN]
        assert result["none"] == ([], f"0 of {len(domains)} shown")
        assert (tmp_path / f"report-{name}.png").stat().st_size > 10_000
    assert found["print_search"] == "none"
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
