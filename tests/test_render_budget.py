"""The rendered tier's budget: how much browser CPU ``--render auto`` may spend, and in which
order the sites it names are rendered when the budget is short.

The budget reads CPU time through a meter; here the meter is a ledger the test writes, so
each decision is exact.  The crawl test at the end runs the real thing (tests/test_render.py
has the browser fixtures).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from detector.crawl.render import (
    SKIPPED,
    RenderBudget,
    RenderSettings,
    RenderStage,
    cpu_split,
    reason_rank,
)


class Ledger:
    """CPU seconds of the browser and of the crawl, as the test says they are."""

    def __init__(self) -> None:
        self.browser = 0.0
        self.crawl = 0.0

    def __call__(self) -> tuple[float, float]:
        return self.browser, self.crawl


def test_the_budget_allows_a_share_of_the_crawls_cpu_costed_by_page_size() -> None:
    ledger = Ledger()
    budget = RenderBudget(0.5, meter=ledger, allowance=0, every=0)
    assert budget.cost(200_000) == 1.0 and budget.cost(1_000) == 0.3  # a second per 200 KB, 0.3 at least
    ledger.crawl = 1.9
    assert not budget.allows(200_000)  # 1 > 0.5 * 1.9
    assert budget.allows(10_000)  # 0.3 <= 0.95
    ledger.crawl = 3.0
    first = budget.begin(200_000)
    assert not budget.allows(200_000)  # 1 in flight + 1 more > 1.5
    assert budget.allows(10_000)  # 1 in flight + 0.3 <= 1.5
    ledger.browser = 2.5  # what it really cost, the browser's launch included
    budget.end(first)
    assert not budget.allows(200_000)  # 2.5 spent + 1 > 1.5
    ledger.crawl = 7.0
    assert budget.allows(200_000)  # 3.5 <= 3.5
    second = budget.begin(200_000)
    assert not budget.allows(10_000)  # 2.5 spent + 1 in flight + 0.3 > 3.5
    ledger.browser = 3.0
    budget.end(second)
    assert budget.allows(10_000)  # 3 + 0.3 <= 3.5


def test_a_short_crawl_affords_the_allowance() -> None:
    ledger = Ledger()
    budget = RenderBudget(0.5, meter=ledger, allowance=6.0, every=0)
    ledger.crawl, ledger.browser = 1.0, 2.0
    assert budget.allows(100_000)  # 2 + 0.5 <= 3, though 0.5 * 1 is less
    assert not budget.allows(300_000)  # 2 + 1.5 > 3
    ledger.crawl = 10.0
    assert budget.allows(300_000)  # the share is more now: 3.5 <= 5


def test_a_browser_restart_keeps_what_the_old_one_spent() -> None:
    ledger = Ledger()
    budget = RenderBudget(1.0, meter=ledger, every=0)
    ledger.browser, ledger.crawl = 5.0, 10.0
    assert budget.browser_cpu() == (5.0, 10.0)
    ledger.browser = 0.5  # the old browser exited; a new one started
    assert budget.browser_cpu() == (5.5, 10.0)


def test_a_reading_is_reused_for_a_moment() -> None:
    ledger = Ledger()
    budget = RenderBudget(1.0, meter=ledger, every=60)
    ledger.browser, ledger.crawl = 1.0, 2.0
    assert budget.browser_cpu() == (1.0, 2.0)
    ledger.browser, ledger.crawl = 5.0, 9.0
    assert budget.browser_cpu() == (1.0, 2.0)  # within the minute: the same reading
    assert RenderBudget(1.0, meter=ledger, every=0).browser_cpu() == (5.0, 9.0)


def test_no_budget_and_render_on_always_allow() -> None:
    ledger = Ledger()
    ledger.browser = 100.0
    assert RenderBudget(0.0, meter=ledger, every=0).allows(10**9)
    assert RenderStage("on", RenderSettings(), budget=0.1).budget.share == 0.0


def test_reasons_rank_what_a_render_most_likely_changes_first() -> None:
    ranked = sorted([["ShopKit: version in js rules"], ["scripts name Intercom"], ["empty #root"],
                     ["tag manager Google Tag Manager runs and no tags were found"],
                     ["Foo: confidence 25, js/dom rules can confirm"], ["something new"]], key=reason_rank)
    assert [r[0].split()[0] for r in ranked] == ["tag", "empty", "Foo:", "scripts", "ShopKit:", "something"]


def test_the_stage_renders_the_best_waiting_sites_and_keeps_the_rest_static() -> None:
    ledger = Ledger()
    stage = RenderStage("auto", RenderSettings(), backlog=3, budget=1.0)
    stage.budget = RenderBudget(1.0, meter=ledger, allowance=0, every=0)
    ledger.crawl = 1.0  # the library loaded: a render's worth
    stage.first = frozenset({"skipped-last-time.test"})
    done: list[tuple[str, str]] = []

    def work(domain: str, how: str) -> object:
        async def run() -> None:
            await asyncio.sleep(0)
            if how == "rendered":
                ledger.browser += 1.0  # a render costs the browser a second
            done.append((domain, how))
        return run

    async def crawl() -> None:
        sites = [("a.test", ["ShopKit: version in js rules"]),  # rendered at once
                 ("b.test", ["ShopKit: version in js rules"]),
                 ("c.test", ["empty #app"]),
                 ("skipped-last-time.test", ["scripts name Intercom"]),
                 ("d.test", ["scripts name Intercom"]),  # the queue holds 3: the worst goes (b.test)
                 ("e.test", ["tag manager Google Tag Manager runs and no tags were found"])]
        for domain, reasons in sites:
            await stage.offer(domain, reasons, 200_000, work(domain, "rendered"), work(domain, SKIPPED))
            await asyncio.sleep(0.01)
        ledger.crawl = 3.0  # the static crawl earned two renders' worth
        stage.pump()
        await stage.close()

    asyncio.run(crawl())
    assert done[0] == ("a.test", "rendered")
    assert ("b.test", SKIPPED) in done[:3]  # pushed out of the full queue when d.test came
    rendered = [d for d, how in done if how == "rendered"]
    skipped = sorted(d for d, how in done if how == SKIPPED)
    # the earned budget goes to the site skipped last time, then to the best reason left
    assert rendered == ["a.test", "skipped-last-time.test", "e.test"], done
    assert skipped == ["b.test", "c.test", "d.test"]


def test_cpu_split_counts_the_browser_side_apart() -> None:
    # A child named like Chromium that burns CPU is the browser side; this process is the rest.
    burn = ("import ctypes, time\nctypes.CDLL(None).prctl(15, b'chromium', 0, 0, 0)  # PR_SET_NAME\n"
            "t = time.process_time()\nwhile time.process_time() - t < 0.4: pass\ntime.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            browser, crawl = cpu_split(os.getpid())
            if browser >= 0.35:
                break
            time.sleep(0.05)
        assert browser >= 0.35, browser
        assert crawl >= time.process_time() - 0.05  # at least this process's own CPU
    finally:
        child.kill()
        child.wait()
