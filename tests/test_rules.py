"""Rules files: the shipped example loads; each bad file gets its own message (line and fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.engine.signatures import load_signatures
from detector.errors import MissingInputError
from detector.segment.rules import (
    RulesError,
    Vocabulary,
    load_rules,
    needed_technologies,
    parse_rules,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.from_library(load_signatures(None))


def test_example_rules_use_real_names(vocabulary: Vocabulary) -> None:
    rules = load_rules(ROOT / "examples" / "rules.yaml", vocabulary)
    assert rules.product == "Acme Mail"
    assert rules.cohort_names == (
        "integration",
        "displacement",
        "complement",
        "whitespace",
        "growing-shops",
        "maturity-basic",
        "maturity-measured",
        "maturity-advanced",
        "unknown",
    )
    assert rules.max_age_days == 90


def test_names_are_matched_case_insensitively(vocabulary: Vocabulary) -> None:
    rules = parse_rules(
        "product:\n  name: X\n  competitors: [klaviyo, {category: email}]\n", vocabulary
    )
    assert [(t.kind, t.name) for t in rules.cohorts[0].condition.items] == [  # type: ignore[union-attr]
        ("technology", "Klaviyo"),
        ("category", "Email"),
    ]


def test_missing_file_names_the_path(tmp_path: Path, vocabulary: Vocabulary) -> None:
    with pytest.raises(MissingInputError) as info:
        load_rules(tmp_path / "nope.yaml", vocabulary)
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file. Check the path; nothing was read."
    assert info.value.exit_code == 66


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "product:\n  name: X\n  integrates_with: [Shopfy]\n",
            'rules.yaml line 3: unknown technology "Shopfy"; did you mean "Shopify"?',
            id="tech",
        ),
        pytest.param(
            "product:\n  name: X\n  integrates_with:\n    - Shopify\n    - Wocommerce\n",
            'rules.yaml line 5: unknown technology "Wocommerce"; did you mean "WooCommerce"?',
            id="tech-block",
        ),
        pytest.param(
            "product:\n  name: X\n  category: Analytic\n",
            'rules.yaml line 3: unknown category "Analytic"; did you mean "Analytics"?',
            id="category",
        ),
        pytest.param(
            "cohort:\n  - name: a\n",
            'rules.yaml line 1: unknown key "cohort" in the rules file; did you mean "cohorts"?',
            id="topkey",
        ),
        pytest.param(
            "product:\n  name: [X\n",
            "rules.yaml line 2: this is not valid YAML: a `[` list is never closed; end it with `]` "
            "on the same line (the parser says: expected ',' or ']', but got '<stream end>')",
            id="yaml",
        ),
        pytest.param(
            "product:\n  name: X\nproduct:\n  name: Y\n",
            'rules.yaml line 3: "product" appears twice; keep one',
            id="dup",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\ntiers:\n  points:\n    displacment: 10\n  thresholds: {1: 10}\n",
            'rules.yaml line 6: tiers.points: unknown cohort "displacment"; did you mean "displacement"?',
            id="points",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\ntiers:\n  thresholds:\n    1: 10\n    2: 40\n",
            "rules.yaml line 5: tier thresholds must fall from tier 1 to tier 3 (e.g. 1: 70, 2: 40, 3: 10)",
            id="thresholds",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\nmarket:\n  employees: {between: [500, 10]}\n",
            "rules.yaml line 5: employees: `between` [500, 10] is empty; put the low bound first",
            id="between",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\nmarket:\n  country: [SE, NO]\n",
            'rules.yaml line 5: country: YAML reads an unquoted NO, no, off or false as false; quote the value (e.g. "NO") if you meant text',
            id="norway",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {technology: Magento, version: two}\n",
            'rules.yaml line 4: version "two" is not a version test; write e.g. "5", ">=2.0" or ">=2, <3"',
            id="version",
        ),
        pytest.param(
            "maturity:\n  weights:\n    - {category: Analytics, weight: 1}\n  levels:\n    some: 1\n    lots: 3\n",
            "rules.yaml line 4: the lowest maturity level (some) starts at 1; start one level at 0 so every scanned account gets a level",
            id="level",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\ncohorts:\n  - name: displacement\n    all: [Shopify]\n",
            'rules.yaml line 5: cohort name "displacement" is already used; pick another name',
            id="name-clash",
        ),
        pytest.param(
            "cohorts:\n  - name: empty\n    description: nothing\n",
            'rules.yaml line 2: cohort "empty" has no condition; add `all:`, `any:` or `not:`',
            id="no-cond",
        ),
        pytest.param(
            "cohorts:\n  - name: big\n    all:\n      - employees: {atleast: 100}\n",
            'rules.yaml line 4: employees: unknown test "atleast"; did you mean "at_least"?',
            id="op",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\nfreshness:\n  max_age_days: soon\n",
            "rules.yaml line 5: `max_age_days` must be a whole number of days >= 1, got 'soon'",
            id="fresh",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\nmarket:\n  pricing: high\n",
            "rules.yaml line 4: `pricing` needs a `technology` or `category` beside it",
            id="market-modifier-alone",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {technology: Klaviyo, first_seen: {within_day: 90}}\n",
            "rules.yaml line 4: `first_seen` takes `{within_days: N}` (adopted recently) or "
            "`{before_days: N}` (a long-time user), got {'within_day': 90}",
            id="first-seen-key",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {technology: Klaviyo, at_least: 2}\n",
            "rules.yaml line 4: `at_least` counts the tools of a category; use it with "
            "`category:`, e.g. `{category: Analytics, at_least: 3}`",
            id="at-least-technology",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {category: Ecommerce, pricing: expensive}\n",
            "rules.yaml line 4: unknown pricing tier 'expensive'; use one of: low, mid, high, "
            "freemium, onetime, recurring, poa, payg",
            id="pricing",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {removed: Klaviyo, within_days: soon}\n",
            "rules.yaml line 4: `within_days` takes a whole number from 1 to 36500, got 'soon'; "
            "write e.g. `within_days: 180`",
            id="removed-days",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\nmarket:\n  employees: \">= 200\"\n",
            'rules.yaml line 5: employees: ">= 200" is text, so it would be compared as text, '
            "not as a number; write `employees: {at_least: 200}`",
            id="comparison-in-string",
        ),
        pytest.param(
            "product:\n  name: X\n  category: Email marketing\n",
            'rules.yaml line 3: unknown category "Email marketing"; did you mean "Email", '
            '"Referral marketing" or "Marketing automation"?',
            id="category-words",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: [Klaviyo]\npriority: [displacment]\n",
            'rules.yaml line 4: priority: unknown cohort "displacment"; did you mean "displacement"?',
            id="priority",
        ),
        pytest.param(
            "- product\n",
            "rules.yaml line 1: a rules file is a mapping with `product:`, `market:`, `cohorts:`...",
            id="list",
        ),
        pytest.param(
            "product:\n  name: X\n",
            "rules.yaml line 1: no cohorts defined; add `product:` relations, `maturity:` or `cohorts:`",
            id="nothing",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    all:\n      - {category: Ecommerce, version: '2'}\n",
            "rules.yaml line 4: `version` needs a `technology` beside it; a category has no version",
            id="version-category",
        ),
        pytest.param(
            "product:\n  name: X\n  integrates_with: [Shopfy]\n  competitors: [Klavyo]\n",
            '2 problems in the rules file:\nrules.yaml line 3: unknown technology "Shopfy"; did you mean "Shopify"?\nrules.yaml line 4: unknown technology "Klavyo"; did you mean "Klaviyo"?',
            id="many",
        ),
        pytest.param(
            "maturity:\n  weights:\n    - {category: Analytics}\n  levels: {none: 0}\n",
            "rules.yaml line 3: maturity weight needs `weight:` beside a technology or category, got {'category': 'Analytics'}",
            id="weight",
        ),
        pytest.param(
            "cohorts:\n  - name: m\n    any:\n      - {technology: Shopify, category: Ecommerce}\n",
            "rules.yaml line 4: use `technology` or `category` in one condition, not both",
            id="tech-and-cat",
        ),
        pytest.param(
            "product:\n  name: X\n  competitors: []\n",
            "rules.yaml line 3: `competitors` must be a non-empty list of technology names or `category: NAME`",
            id="empty-list",
        ),
    ],
)
def test_bad_rules_files(vocabulary: Vocabulary, text: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, vocabulary, "rules.yaml")
    assert str(info.value) == message


def test_needed_technologies_cover_names_and_category_members(vocabulary: Vocabulary) -> None:
    rules = load_rules(ROOT / "examples" / "rules.yaml", vocabulary)
    needed = needed_technologies(rules, vocabulary)
    # named in the rules; in a named category (Reviews, Analytics); in no rule
    assert {"Shopify", "Klaviyo", "LoyaltyLion"} <= needed
    assert {"Yotpo Reviews", "Hotjar"} <= needed
    assert "Nginx" not in needed
    in_categories = {
        name
        for name, cats in vocabulary.technologies.items()
        if {"Reviews", "Analytics", "Marketing automation"} & set(cats)
    }
    assert in_categories <= needed
