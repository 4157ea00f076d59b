"""Cohort assignment on plain records: every cohort type, layering, tiers, freshness, unknown."""

from __future__ import annotations

import doctest
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from detector.segment import assign as segment
from detector.segment import rules
from detector.segment.assign import (
    Account,
    Assignment,
    Seen,
    Segmenter,
    assign_cohorts,
    summary_warnings,
)
from detector.segment.rules import Rules, Vocabulary, parse_rules
from detector.store import accounts
from detector.store import cohorts as cohort_store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
FRESH = "2026-11-18T08:00:00Z"
OLD = "2026-05-01T08:00:00Z"

VOCAB = Vocabulary(
    technologies={
        "Shopify": ("Ecommerce",),
        "WooCommerce": ("Ecommerce", "WordPress plugins"),
        "Magento": ("Ecommerce",),
        "Klaviyo": ("Marketing automation",),
        "MailChimp": ("Marketing automation", "Email"),
        "HubSpot": ("Marketing automation",),
        "Yotpo Reviews": ("Reviews",),
        "Google Analytics": ("Analytics",),
        "Google Tag Manager": ("Tag managers",),
        "Optimizely": ("A/B Testing", "Personalisation"),
        "Segment": ("Customer data platform",),
    },
    categories=(
        "Ecommerce",
        "WordPress plugins",
        "Marketing automation",
        "Email",
        "Reviews",
        "Analytics",
        "Tag managers",
        "A/B Testing",
        "Personalisation",
        "Customer data platform",
    ),
)

RULES = """
product:
  name: Acme Mail
  category: Marketing automation
  integrates_with: [Shopify, WooCommerce]
  competitors: [Klaviyo, MailChimp]
  complements:
    - category: Reviews
market:
  country: [US, GB]
freshness:
  max_age_days: 90
maturity:
  weights:
    - {category: Analytics, weight: 1}
    - {category: Tag managers, weight: 1}
    - {category: A/B Testing, weight: 2}
  levels:
    none: 0
    measured: 2
    advanced: 4
tiers:
  points:
    displacement: 40
    integration: 30
    whitespace: 20
    complement: 10
    maturity-advanced: 20
  firmographics:
    - {points: 20, employees: {between: [50, 1000]}}
  thresholds:
    1: 80
    2: 50
    3: 20
cohorts:
  - name: old-magento
    description: Magento 1 shops (end of life)
    all:
      - {technology: Magento, version: "1"}
  - name: big-no-reviews
    all:
      - employees: {at_least: 500}
    not:
      - category: Reviews
"""


def rules_from(text: str = RULES) -> Rules:
    return parse_rules(text, VOCAB, "rules.yaml")


def seen(tech: str, last_seen: str = FRESH, version: str | None = None) -> Seen:
    return Seen(tech, version, VOCAB.technologies[tech], last_seen)


def account(
    domain: str,
    *techs: Seen,
    last_ok_at: str | None = FRESH,
    status: str | None = "ok",
    **fields: str | float | None,
) -> Account:
    values: dict[str, str | int | float | None] = {"country": "US", "employees": 20}
    values.update(fields)
    return Account(domain, values, last_ok_at, status, tuple(techs))


def assign(acc: Account, text: str = RULES) -> Assignment:
    return Segmenter(rules_from(text), NOW).assign(acc)


def cohorts_of(a: Assignment) -> dict[str, str]:
    return {m.cohort: m.reason for m in a.memberships}


def test_integration_displacement_complement_with_reasons() -> None:
    a = assign(
        account("shop.test", seen("Shopify"), seen("Klaviyo"), seen("Yotpo Reviews", version="2.1"))
    )
    got = cohorts_of(a)
    assert got["integration"] == "runs Shopify, last seen 2026-11-18"
    assert got["displacement"] == "runs Klaviyo, last seen 2026-11-18"
    assert got["complement"] == "runs Yotpo Reviews 2.1, last seen 2026-11-18 (Reviews)"
    assert "whitespace" not in got
    integration = next(m for m in a.memberships if m.cohort == "integration")
    assert [s.technology for s in integration.evidence] == ["Shopify"]


def test_whitespace_runs_nothing_in_the_category() -> None:
    got = cohorts_of(assign(account("shop.test", seen("WooCommerce"))))
    assert (
        got["whitespace"]
        == "runs no Marketing automation technology or Klaviyo or MailChimp (scanned 2026-11-18)"
    )
    assert "displacement" not in got


def test_whitespace_excludes_other_tools_of_the_category() -> None:
    got = cohorts_of(assign(account("shop.test", seen("HubSpot"))))
    assert "whitespace" not in got
    assert "displacement" not in got


def test_never_scanned_goes_to_unknown_not_whitespace() -> None:
    a = assign(account("new.test", last_ok_at=None, status=None))
    assert cohorts_of(a) == {"unknown": "never scanned: crawl it to learn its technologies"}
    assert a.tier is None


def test_failed_scans_go_to_unknown_with_the_last_status() -> None:
    a = assign(account("down.test", last_ok_at=None, status="dns"))
    assert cohorts_of(a) == {
        "unknown": "never scanned successfully (last scan failed: dns); not counted as whitespace"
    }


def test_stale_detection_is_flagged_and_scores_nothing() -> None:
    a = assign(account("shop.test", seen("Shopify", OLD), seen("Klaviyo")))
    by_cohort = {m.cohort: m for m in a.memberships}
    assert by_cohort["integration"].stale
    assert by_cohort["integration"].reason == (
        "runs Shopify, last seen 2026-05-01 (stale: older than 90 days, so not counted)"
    )
    assert not by_cohort["displacement"].stale
    # 40 for displacement only: the stale integration scores nothing.
    assert a.score == 40
    assert a.tier == 3


def test_stale_detection_makes_whitespace_uncertain() -> None:
    a = assign(account("shop.test", seen("WooCommerce"), seen("Klaviyo", OLD)))
    by_cohort = {m.cohort: m for m in a.memberships}
    assert by_cohort["whitespace"].stale
    assert by_cohort["displacement"].stale
    assert (
        "older detection disagrees: runs Klaviyo, last seen 2026-05-01"
        in by_cohort["whitespace"].reason
    )


def test_stale_scan_flags_every_membership() -> None:
    a = assign(account("shop.test", seen("WooCommerce", OLD), last_ok_at=OLD))
    assert {m.cohort for m in a.memberships} == {"integration", "whitespace", "maturity-none"}
    assert all(m.stale for m in a.memberships)
    whitespace = next(m for m in a.memberships if m.cohort == "whitespace")
    assert (
        "(stale: last successful scan 2026-05-01, older than 90 days; re-crawl)"
        in whitespace.reason
    )
    assert a.score == 0


def test_no_freshness_limit_counts_everything() -> None:
    text = RULES.replace("freshness:\n  max_age_days: 90\n", "")
    a = assign(account("shop.test", seen("Shopify", OLD), last_ok_at=OLD), text)
    assert not any(m.stale for m in a.memberships)
    assert "integration" in cohorts_of(a)


@pytest.mark.parametrize(
    ("techs", "level", "score_text"),
    [
        (
            (),
            "maturity-none",
            "maturity score 0 (none of the weighted technologies) reaches none (>= 0)",
        ),
        (
            ("Google Analytics", "Google Tag Manager"),
            "maturity-measured",
            (
                "maturity score 2 (Analytics: Google Analytics +1, Tag managers: Google Tag Manager +1) "
                "reaches measured (>= 2)"
            ),
        ),
        (
            ("Google Analytics", "Google Tag Manager", "Optimizely"),
            "maturity-advanced",
            (
                "maturity score 4 (Analytics: Google Analytics +1, Tag managers: Google Tag Manager +1, "
                "A/B Testing: Optimizely +2) reaches advanced (>= 4)"
            ),
        ),
    ],
    ids=["none", "measured", "advanced"],
)
def test_maturity_levels(techs: tuple[str, ...], level: str, score_text: str) -> None:
    got = cohorts_of(assign(account("shop.test", *(seen(t) for t in techs))))
    assert got[level] == score_text
    assert [c for c in got if c.startswith("maturity-")] == [level]


def test_market_filter_scopes_accounts_first() -> None:
    accounts = [
        account("us.test", seen("Shopify")),
        account("fr.test", seen("Shopify"), country="FR"),
    ]
    assert [a.domain for a in assign_cohorts(rules_from(), accounts, NOW)] == ["us.test"]


def test_market_filter_drops_accounts_missing_the_column() -> None:
    text = RULES.replace(
        "  country: [US, GB]\n", "  country: [US, GB]\n  employees: {at_least: 10}\n"
    )
    accounts = [account("known.test"), account("blank.test", employees=None)]
    assert [a.domain for a in assign_cohorts(rules_from(text), accounts, NOW)] == ["known.test"]


def test_tiers_layer_cohorts_maturity_and_firmographics() -> None:
    techs = [
        seen(t)
        for t in ("Shopify", "Klaviyo", "Google Analytics", "Google Tag Manager", "Optimizely")
    ]
    small = assign(account("small.test", *techs, employees=20))
    big = assign(account("big.test", *techs, employees=300))
    # integration 30 + displacement 40 + maturity-advanced 20 = 90; the big one earns 20 more.
    assert (small.score, small.tier) == (90, 1)
    assert (big.score, big.tier) == (110, 1)
    lone = assign(account("lone.test", seen("Shopify")))
    # integration 30 + whitespace 20 = 50
    assert (lone.score, lone.tier) == (50, 2)
    bare = assign(account("bare.test", seen("Klaviyo", OLD)))
    assert (bare.score, bare.tier) == (0, None)


def test_tier_is_shared_by_all_memberships_of_an_account() -> None:
    a = assign(account("shop.test", seen("Shopify"), seen("Klaviyo")))
    assert a.tier == 2
    assert a.score == 70


def test_custom_cohort_with_version() -> None:
    got = cohorts_of(assign(account("m1.test", seen("Magento", version="1.9.4"))))
    assert got["old-magento"] == "runs Magento 1.9.4, last seen 2026-11-18"
    assert "old-magento" not in cohorts_of(
        assign(account("m2.test", seen("Magento", version="2.4")))
    )
    assert "old-magento" not in cohorts_of(assign(account("m0.test", seen("Magento"))))


def test_custom_cohort_with_firmographics_and_not() -> None:
    got = cohorts_of(assign(account("big.test", seen("Shopify"), employees=800)))
    assert got["big-no-reviews"] == "employees 800; runs no Reviews technology"
    assert "big-no-reviews" not in cohorts_of(
        assign(account("big.test", seen("Yotpo Reviews"), employees=800))
    )
    assert "big-no-reviews" not in cohorts_of(assign(account("small.test", employees=40)))


def test_nested_any_all_not() -> None:
    text = """
cohorts:
  - name: modern
    any:
      - all: [Segment, {category: A/B Testing}]
      - all:
          - Google Analytics
          - not: [Google Tag Manager]
"""
    rules = rules_from(text)
    seg = Segmenter(rules, NOW)
    got = {
        name: {
            m.cohort
            for m in seg.assign(account(name + ".test", *(seen(t) for t in techs))).memberships
        }
        for name, techs in {
            "cdp": ("Segment", "Optimizely"),
            "cdp-only": ("Segment",),
            "ga": ("Google Analytics",),
            "ga-gtm": ("Google Analytics", "Google Tag Manager"),
        }.items()
    }
    assert got == {"cdp": {"modern"}, "cdp-only": set(), "ga": {"modern"}, "ga-gtm": set()}


def test_summary_warns_on_empty_cohorts_and_overload() -> None:
    rules = rules_from()
    sizes = {
        "integration": 3,
        "displacement": 1,
        "complement": 2,
        "whitespace": 4,
        "maturity-none": 1,
    }
    warnings = summary_warnings(rules, sizes)
    assert warnings == [
        'warning: cohort "old-magento" is empty; check its rule or drop it',
        'warning: cohort "big-no-reviews" is empty; check its rule or drop it',
        'warning: cohort "maturity-measured" is empty; check its rule or drop it',
        'warning: cohort "maturity-advanced" is empty; check its rule or drop it',
        "warning: 9 cohorts; more than 8 is more than a team can message separately: merge or drop some",
    ]


def test_segment_module_stays_core() -> None:
    code = "import sys, detector.segment.assign, detector.segment.rules; print(sorted(m for m in ('scrapy', 'sqlite_utils', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module", [rules, segment, accounts, cohort_store], ids=lambda m: m.__name__
)
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_stale_detection_that_would_change_the_maturity_level_is_flagged() -> None:
    a = assign(account("shop.test", seen("Google Analytics"), seen("Optimizely", OLD)))
    level = next(m for m in a.memberships if m.cohort.startswith("maturity-"))
    # fresh: Analytics 1 -> "none"; with the stale Optimizely it would be 3 -> "measured"
    assert level.cohort == "maturity-none"
    assert level.stale
    assert level.reason.endswith(
        "(stale: counting detections older than 90 days would change the level)"
    )


def test_stale_detection_a_rule_ignores_changes_nothing() -> None:
    a = assign(account("shop.test", seen("Shopify"), seen("Segment", OLD)))
    assert not any(m.stale for m in a.memberships)


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("[US, GB]", "us", True),
        ("[US, GB]", "FR", False),
        ("{not_in: [FR]}", "US", True),
        ("{not_in: [FR]}", None, False),
        ("{between: [10, 50]}", 50, True),
        ("{between: [10, 50]}", "1,200", False),
        ("{between: [10, 5000]}", "1,200", True),
        ("{at_least: 10}", "n/a", False),
        ("{at_most: 10}", 9.5, True),
        ("{present: true}", "", False),
        ("{present: false}", None, True),
        ("Retail", "retail ", True),
        ("{equals: 5}", 5.0, True),
    ],
)
def test_firmographic_tests(spec: str, value: str | float | None, expected: bool) -> None:
    text = f"cohorts:\n  - name: c\n    all:\n      - col: {spec}\n"
    rules = rules_from(text)
    acc = Account("x.test", {"col": value}, FRESH, "ok")
    assert ("c" in cohorts_of(Segmenter(rules, NOW).assign(acc))) is expected
