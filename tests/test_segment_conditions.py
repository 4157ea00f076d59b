"""Rule conditions over time and intensity: first_seen, removed, at_least, confidence, pages,
pricing, technology tests in the market, priority and the score breakdown (plain records)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detector.segment.assign import Account, Seen, Segmenter, balance_warnings
from detector.segment.rules import RulesError, Vocabulary, parse_rules
from tests.test_segment import NOW, VOCAB

PRICED = replace(
    VOCAB,
    pricing={"Shopify": ("mid", "recurring"), "Magento": ("high", "poa"), "WooCommerce": ("low",)},
)


def seen(
    tech: str,
    first: str = "2026-11-01T00:00:00Z",
    last: str = "2026-11-18T00:00:00Z",
    confidence: int = 100,
    pages: int = 1,
) -> Seen:
    return Seen(tech, None, VOCAB.technologies[tech], last, first, confidence, pages)


def dropped(tech: str, removed_at: str, last: str = "2026-05-01T00:00:00Z") -> Seen:
    return Seen(tech, None, VOCAB.technologies[tech], last, "2025-01-01T00:00:00Z", removed_at=removed_at)


def account(domain: str, *techs: Seen, removed: tuple[Seen, ...] = (), **fields: object) -> Account:
    values = {"country": "US", "employees": 20, **fields}
    return Account(domain, values, "2026-11-18T00:00:00Z", "ok", techs, removed)  # type: ignore[arg-type]


def reasons(text: str, acc: Account, vocab: Vocabulary = VOCAB) -> dict[str, str]:
    seg = Segmenter(parse_rules(text, vocab), NOW)
    return {m.cohort: m.reason for m in seg.assign(acc).memberships}


TIMING = """
cohorts:
  - name: just-signed
    all: [{technology: Klaviyo, first_seen: {within_days: 90}}]
  - name: renewal
    all: [{technology: Klaviyo, first_seen: {before_days: 730}}]
  - name: churned
    all: [{removed: Klaviyo, within_days: 180}]
"""


@pytest.mark.parametrize(
    ("acc", "expected"),
    [
        (
            account("new.test", seen("Klaviyo", first="2026-11-06T00:00:00Z")),
            {"just-signed": "runs Klaviyo, first seen 2026-11-06, last seen 2026-11-18"},
        ),
        (
            account("old.test", seen("Klaviyo", first="2021-03-01T00:00:00Z")),
            {"renewal": "runs Klaviyo, first seen 2021-03-01, last seen 2026-11-18"},
        ),
        (account("middle.test", seen("Klaviyo", first="2025-06-01T00:00:00Z")), {}),
        (
            account("gone.test", removed=(dropped("Klaviyo", "2026-08-15T00:00:00Z"),)),
            {"churned": "dropped Klaviyo: last seen 2026-05-01, gone since 2026-08-15"},
        ),
        (account("long-gone.test", removed=(dropped("Klaviyo", "2025-01-15T00:00:00Z"),)), {}),
        (
            # Dropped, then back: it runs Klaviyo again, so it has not churned.
            account(
                "back.test",
                seen("Klaviyo", first="2025-06-01T00:00:00Z"),
                removed=(dropped("Klaviyo", "2026-08-15T00:00:00Z"),),
            ),
            {},
        ),
    ],
    ids=["adopted-recently", "long-time-user", "in-between", "churned", "churned-long-ago", "came-back"],
)
def test_timing_conditions_name_the_dates(acc: Account, expected: dict[str, str]) -> None:
    assert reasons(TIMING, acc) == expected


INTENSITY = """
cohorts:
  - name: analytics-heavy
    all: [{category: Analytics, at_least: 2}]
  - name: sure-shopify
    all: [{technology: Shopify, min_confidence: 75, pages_seen: {at_least: 2}}]
  - name: premium-platform
    all: [{category: Ecommerce, pricing: [high]}]
"""


def test_intensity_confidence_pages_and_pricing() -> None:
    vocab = replace(PRICED, technologies={**PRICED.technologies, "Matomo": ("Analytics",)})
    heavy = Account(
        "heavy.test",
        {},
        "2026-11-18T00:00:00Z",
        "ok",
        (
            Seen("Google Analytics", None, ("Analytics",), "2026-11-18T00:00:00Z"),
            Seen("Matomo", None, ("Analytics",), "2026-11-18T00:00:00Z"),
            seen("Shopify", confidence=90, pages=3),
        ),
    )
    got = reasons(INTENSITY, heavy, vocab)
    assert got["analytics-heavy"].startswith("2 Analytics technologies (at least 2); runs Google Analytics")
    assert got["sure-shopify"] == "runs Shopify, last seen 2026-11-18, confidence 90, on 3 pages"
    assert "premium-platform" not in got  # Shopify is "mid"
    light = account("light.test", seen("Shopify", confidence=50, pages=3), seen("Magento"))
    got = reasons(INTENSITY, light, vocab)
    assert "sure-shopify" not in got
    assert got["premium-platform"] == "runs Magento, last seen 2026-11-18 (Ecommerce)"


SCOPED = """
product:
  name: Acme Mail
  category: Marketing automation
  integrates_with: [Shopify]
  competitors: [Klaviyo]
market:
  country: [US]
  category: Ecommerce
priority: [displacement, integration]
tiers:
  points: {displacement: 40, integration: 30, whitespace: 20}
  firmographics:
    - {points: 20, employees: {at_least: 50}}
    - {points: -100, stage: closed-won}
  thresholds: {1: 80, 2: 50, 3: 20}
"""


def test_market_technology_tests_scope_whitespace() -> None:
    seg = Segmenter(parse_rules(SCOPED, VOCAB), NOW)
    school = account("school.test", seen("Google Analytics"))
    shop = account("shop.test", seen("Shopify"))
    never = Account("never.test", {"country": "US"}, None, None)
    assert not seg.in_market(school)  # no ecommerce platform: not in the universe
    assert seg.in_market(shop)
    assert seg.in_market(never)  # judged by its columns: it lands in `unknown`
    assert seg.market_step(Account("fr.test", {"country": "FR"}, None, None)) == 0
    assert seg.market_step(school) == 1
    assert {m.cohort for m in seg.assign(shop).memberships} == {"integration", "whitespace"}


def test_primary_cohort_follows_priority_and_breakdown_explains_the_score() -> None:
    seg = Segmenter(parse_rules(SCOPED, VOCAB), NOW)
    a = seg.assign(account("big.test", seen("Shopify"), seen("Klaviyo"), employees=200, stage="Closed-Won"))
    assert a.primary == "displacement"
    assert a.breakdown == (
        ("integration", 30.0),
        ("displacement", 40.0),
        ("employees >= 50", 20.0),
        ("stage = closed-won", -100.0),
    )
    assert (a.score, a.tier) == (-10.0, None)
    plain = seg.assign(account("shop.test", seen("Shopify")))
    assert (plain.primary, plain.score, plain.tier) == ("integration", 50.0, 2)


def test_a_stale_scan_gets_no_tier_from_firmographics_alone() -> None:
    text = "product: {name: X, competitors: [Klaviyo]}\nfreshness: {max_age_days: 90}\n"
    text += "tiers:\n  firmographics: [{points: 30, employees: {at_least: 10}}]\n  thresholds: {3: 20}\n"
    seg = Segmenter(parse_rules(text, VOCAB), NOW)
    old = Account("old.test", {"employees": 500}, "2026-03-01T00:00:00Z", "ok", ())
    a = seg.assign(old)
    assert (a.score, a.tier, a.primary) == (30.0, None, "stale")
    fresh = seg.assign(replace(old, last_ok_at="2026-11-18T00:00:00Z"))
    assert (fresh.tier, fresh.primary) == (3, "none")


def test_balance_warnings_name_the_broad_cohort_and_unscoped_whitespace() -> None:
    rules = parse_rules(
        "product: {name: X, category: Marketing automation, integrates_with: [Shopify], competitors: [Klaviyo]}\n",
        VOCAB,
    )
    got = balance_warnings(rules, {"integration": 8, "displacement": 1, "whitespace": 2}, 10)
    assert got[0].startswith('warning: cohort "integration" holds 80% of the market (8 of 10 accounts)')
    assert not any("usable" in w for w in got)
    assert got[-1].startswith("warning: whitespace is not scoped")
    scoped = parse_rules(SCOPED, VOCAB)
    assert not any("scoped" in w for w in balance_warnings(scoped, {}, 0))


def test_every_rule_problem_in_one_pass_columns_included() -> None:
    text = (
        "product:\n  name: X\n  competitors: [Klaviyo]\n"
        "market:\n  contry: [US]\n  employees: \">= 200\"\n"
        "cohorts:\n  - name: a\n    all: [Shopfy]\n"
    )
    with pytest.raises(RulesError) as info:
        parse_rules(text, VOCAB, columns=["country", "employees"])
    assert str(info.value) == (
        "3 problems in the rules file:\n"
        'rules.yaml line 5: no account column "contry"; did you mean "country"?\n'
        'rules.yaml line 6: employees: ">= 200" is text, so it would be compared as text, not as '
        "a number; write `employees: {at_least: 200}`\n"
        'rules.yaml line 9: unknown technology "Shopfy"; did you mean "Shopify"?'
    )


def test_a_technology_there_at_the_first_scan_was_not_adopted_recently() -> None:
    klaviyo = seen("Klaviyo", first="2026-11-06T00:00:00Z")
    first_crawl = replace(account("a.test", klaviyo), first_ok_at="2026-11-06T00:00:00Z")
    assert "just-signed" not in reasons(TIMING, first_crawl)  # adopted then, or years before
    later = replace(first_crawl, first_ok_at="2026-08-06T00:00:00Z")
    assert reasons(TIMING, later)["just-signed"] == (
        "runs Klaviyo, first seen 2026-11-06 (not there at the first scan, 2026-08-06), "
        "last seen 2026-11-18"
    )
