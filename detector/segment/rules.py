"""Segmentation rules file (YAML) -> validated, typed Rules; every error names its line."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from detector.errors import DetectorError

BUILTIN_KINDS = ("integration", "displacement", "complement", "whitespace", "maturity", "unknown")
UNKNOWN = "unknown"
TOP_KEYS = ("product", "market", "freshness", "maturity", "tiers", "priority", "cohorts")
PRODUCT_KEYS = ("name", "category", "integrates_with", "competitors", "complements")
TEST_OPS = ("equals", "in", "not_in", "between", "at_least", "at_most", "present")
#: What a technology/category condition may add: version, adoption timing, intensity, spend.
TECH_MODIFIERS = ("version", "first_seen", "min_confidence", "pages_seen", "pricing", "at_least")
LEAF_KEYS = ("technology", "category", *TECH_MODIFIERS)
REMOVED_KEYS = ("removed", "within_days")
GROUP_KEYS = ("all", "any", "not")
#: The signature library's pricing tags (a proxy for spend).
PRICING_TAGS = ("low", "mid", "high", "freemium", "onetime", "recurring", "poa", "payg")
#: A comparison written inside a string (`">= 200"`): YAML reads it as text, never a number.
_COMPARISON = re.compile(r"\s*(>=|<=|==|!=|=>|=<|>|<|=)\s*(-?\d[\d,]*(?:\.\d+)?)\s*")

Scalar = str | int | float


class RulesError(DetectorError):
    """The rules file is invalid; the message lists every problem with its line and fix."""


@dataclass(frozen=True, slots=True)
class VersionTest:
    """A version constraint such as ``>=2, <3`` (a bare ``5`` means 5 or 5.x)."""

    text: str
    clauses: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class TechTest:
    """Runs a technology (optionally in a version range) or any technology of a category.

    The optional filters narrow the detections that count: first seen within / before so many
    days, a minimum confidence, a minimum number of pages it was seen on, the technologies of
    a pricing tier (``only``, resolved from the library); ``at_least`` asks for that many.
    """

    kind: Literal["technology", "category"]
    name: str
    version: VersionTest | None = None
    first_seen_within: int | None = None
    first_seen_before: int | None = None
    min_confidence: int | None = None
    min_pages: int | None = None
    pricing: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    at_least: int = 1

    @property
    def plain(self) -> bool:
        """True when only the name (and version) matter: the fast path."""
        return (
            self.first_seen_within is None
            and self.first_seen_before is None
            and self.min_confidence is None
            and self.min_pages is None
            and self.only is None
            and self.at_least == 1
        )


@dataclass(frozen=True, slots=True)
class RemovedTest:
    """Dropped a technology: its detection was marked removed (within so many days)."""

    name: str
    within_days: int | None = None


@dataclass(frozen=True, slots=True)
class FieldTest:
    """A firmographic test on one account column (industry, employees, country...)."""

    column: str
    op: str
    values: tuple[Scalar, ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Group:
    """All / any / none of the conditions inside."""

    op: Literal["all", "any", "not"]
    items: tuple[Condition, ...]


Condition = TechTest | RemovedTest | FieldTest | Group


@dataclass(frozen=True, slots=True)
class CohortRule:
    """One cohort: its name, kind (integration, displacement, ... custom) and condition."""

    name: str
    kind: str
    description: str
    condition: Condition


@dataclass(frozen=True, slots=True)
class Weight:
    """A maturity weight: points an account earns when it runs this technology or category."""

    test: TechTest
    weight: float


@dataclass(frozen=True, slots=True)
class Level:
    """A maturity level and the lowest score that reaches it."""

    name: str
    min_score: float

    @property
    def cohort(self) -> str:
        """The cohort name of this level."""
        return f"maturity-{self.name}"


@dataclass(frozen=True, slots=True)
class Maturity:
    """Weighted technologies/categories -> score -> named levels (ascending)."""

    weights: tuple[Weight, ...]
    levels: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Bonus:
    """Fit-score points for accounts whose firmographics pass a test."""

    condition: Condition
    points: float


@dataclass(frozen=True, slots=True)
class Tiers:
    """Fit score (cohort points + firmographic bonuses) -> tier by thresholds."""

    points: tuple[tuple[str, float], ...]
    bonuses: tuple[Bonus, ...]
    thresholds: tuple[tuple[int, float], ...]

    def tier_for(self, score: float) -> int | None:
        """The best tier whose threshold ``score`` reaches, or None.

        >>> Tiers((), (), ((1, 70.0), (2, 40.0), (3, 0.0))).tier_for(45)
        2
        """
        for tier, minimum in self.thresholds:
            if score >= minimum:
                return tier
        return None


@dataclass(frozen=True, slots=True)
class Rules:
    """A validated rules file."""

    product: str
    product_categories: tuple[str, ...]
    market: Group
    max_age_days: int | None
    cohorts: tuple[CohortRule, ...]
    maturity: Maturity | None
    tiers: Tiers | None
    source: str = ""
    #: Cohorts in the order that picks an account's ``primary_cohort`` (default: file order).
    priority: tuple[str, ...] = ()
    #: SHA-256 of the rules file's text, stored with each run.
    digest: str = ""

    @property
    def cohort_names(self) -> tuple[str, ...]:
        """Every cohort this file defines, in report order (``unknown`` last)."""
        levels = tuple(lv.cohort for lv in self.maturity.levels) if self.maturity else ()
        return tuple(c.name for c in self.cohorts) + levels + (UNKNOWN,)

    @property
    def primary_order(self) -> tuple[str, ...]:
        """Cohorts that can be an account's primary one, best first.

        The ``priority`` list, then the other cohorts in file order; maturity levels only
        when ``priority`` names them (a level describes every account, it is not a segment).
        """
        rest = tuple(c.name for c in self.cohorts if c.name not in self.priority)
        return self.priority + rest

    @property
    def scoped(self) -> bool:
        """Whether the market tests technologies (whitespace then means "inside that universe")."""
        names, categories = mentioned(self.market)
        return bool(names or categories)

    def kind_of(self, cohort: str) -> str:
        """The kind of a cohort name (``integration``... ``maturity``, ``custom``, ``unknown``)."""
        for c in self.cohorts:
            if c.name == cohort:
                return c.kind
        return UNKNOWN if cohort == UNKNOWN else "maturity"


def mentioned(cond: Condition) -> tuple[frozenset[str], frozenset[str]]:
    """The technology and category names a condition looks at.

    >>> mentioned(Group("any", (TechTest("technology", "Shopify"), TechTest("category", "Reviews"))))
    (frozenset({'Shopify'}), frozenset({'Reviews'}))
    """
    if isinstance(cond, TechTest):
        if cond.kind == "category":
            return frozenset(), frozenset((cond.name,))
        return frozenset((cond.name,)), frozenset()
    if isinstance(cond, RemovedTest):
        return frozenset((cond.name,)), frozenset()
    if isinstance(cond, FieldTest):
        return frozenset(), frozenset()
    names: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    for item in cond.items:
        n, c = mentioned(item)
        names |= n
        categories |= c
    return names, categories


def needed_technologies(rules: Rules, vocabulary: Vocabulary) -> frozenset[str]:
    """Every technology a rule can look at: named ones plus the members of named categories.

    Segmentation reads only these detections; the others cannot change any membership.
    """
    names: set[str] = set()
    categories: set[str] = set()
    conditions: list[Condition] = [rules.market, *(c.condition for c in rules.cohorts)]
    if rules.maturity:
        conditions += [w.test for w in rules.maturity.weights]
    for cond in conditions:
        n, c = mentioned(cond)
        names |= n
        categories |= c
    for tech, cats in vocabulary.technologies.items():
        if not categories.isdisjoint(cats):
            names.add(tech)
    return frozenset(names)


def leaves(rules: Rules) -> Iterator[Condition]:
    """Every leaf condition of the rules (market, cohorts, maturity weights, tier bonuses)."""

    def walk(cond: Condition) -> Iterator[Condition]:
        if isinstance(cond, Group):
            for item in cond.items:
                yield from walk(item)
        else:
            yield cond

    yield from walk(rules.market)
    for c in rules.cohorts:
        yield from walk(c.condition)
    for w in rules.maturity.weights if rules.maturity else ():
        yield w.test
    for bonus in rules.tiers.bonuses if rules.tiers else ():
        yield from walk(bonus.condition)


def uses_removed(rules: Rules) -> bool:
    """Whether a rule tests dropped technologies (so removed detections must be read)."""
    return any(isinstance(leaf, RemovedTest) for leaf in leaves(rules))


def uses_adoption(rules: Rules) -> bool:
    """Whether a rule tests recent adoption (so each domain's first successful scan is read)."""
    return any(
        isinstance(leaf, TechTest) and leaf.first_seen_within is not None for leaf in leaves(rules)
    )


def uses_confidence(rules: Rules) -> bool:
    """Whether a rule tests ``min_confidence`` (so the detections' confidence must be read)."""
    return any(
        isinstance(leaf, TechTest) and leaf.min_confidence is not None for leaf in leaves(rules)
    )


def uses_pages(rules: Rules) -> bool:
    """Whether a rule tests ``pages_seen`` (so the detections' evidence must be read)."""
    return any(isinstance(leaf, TechTest) and leaf.min_pages is not None for leaf in leaves(rules))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Known technology names and their categories, for validation and "did you mean"."""

    technologies: Mapping[str, tuple[str, ...]]
    categories: tuple[str, ...]
    #: Pricing tags by technology (``low``, ``mid``, ``high``, ``recurring``...), where known.
    pricing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_library(cls, library: Any) -> Vocabulary:
        """Build from a signatures.Library."""
        techs = {name: tuple(sig.categories) for name, sig in library.signatures.items()}
        cats = tuple(c.name for c in library.categories.values())
        pricing = {
            name: tuple(str(t) for t in sig.info.get("pricing") or ())
            for name, sig in library.signatures.items()
            if sig.info.get("pricing")
        }
        return cls(techs, cats, pricing)


# --- YAML with line numbers ---------------------------------------------------------------


class _LineDict(dict):  # type: ignore[type-arg]
    line: int
    lines: dict[Any, int]


class _LineList(list):  # type: ignore[type-arg]
    line: int
    lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out:
            raise _DuplicateKey(line, key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: Any) -> None:
        super().__init__(line, key)
        self.line = line
        self.key = key


def _line_of(container: Any, key: Any, default: int) -> int:
    lines = getattr(container, "lines", None)
    if isinstance(lines, dict):
        return int(lines.get(key, default))
    if isinstance(lines, list) and isinstance(key, int) and key < len(lines):
        return int(lines[key])
    return default


def did_you_mean_words(text: str, choices: Iterable[str]) -> str:
    """A hint for a misspelt multi-word name: names sharing a word first, then spelling.

    A word that names the thing ("email") weighs more than one many names share
    ("marketing"), so "Email marketing" suggests "Email" before "Referral marketing".

    >>> did_you_mean_words("Email marketing", ["Email", "Referral marketing", "Marketing automation"])
    '; did you mean "Email", "Referral marketing" or "Marketing automation"?'
    """
    choices = list(choices)
    words = {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}
    split = {c: set(re.findall(r"[a-z0-9]+", c.lower())) for c in choices}

    def same(a: str, b: str) -> bool:  # plurals and stems: "manager" ~ "managers"
        return a == b or (min(len(a), len(b)) >= 5 and (a.startswith(b) or b.startswith(a)))

    def hits(word: str, choice: str) -> bool:
        return any(same(word, w) for w in split[choice])

    freq = {w: sum(1 for c in choices if hits(w, c)) for w in words}
    scored = []
    for c in choices:
        weight = sum(1.0 / freq[w] for w in words if freq[w] and hits(w, c))
        if weight:
            ratio = difflib.SequenceMatcher(None, text.lower(), c.lower()).ratio()
            scored.append((weight, ratio, c))
    if not scored:
        return did_you_mean(text, choices)
    scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
    best = [c for _, _, c in scored[:3]]
    if len(best) == 1:
        return f'; did you mean "{best[0]}"?'
    return "; did you mean " + ", ".join(f'"{c}"' for c in best[:-1]) + f' or "{best[-1]}"?'


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A '; did you mean "X"?' hint for a misspelt name, or ''.

    >>> did_you_mean("Shopfy", ["Shopify", "Magento"])
    '; did you mean "Shopify"?'
    """
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    hint = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f'; did you mean "{by_lower[hint[0]]}"?' if hint else ""


# --- parsing ------------------------------------------------------------------------------


class _Parser:
    """Walks the loaded YAML, collecting problems as ``line N: problem; fix``."""

    def __init__(self, where: str, vocabulary: Vocabulary) -> None:
        self.where = where
        self.vocab = vocabulary
        self.tech_by_lower = {name.lower(): name for name in vocabulary.technologies}
        self.cat_by_lower = {name.lower(): name for name in vocabulary.categories}
        self.problems: list[tuple[int, str]] = []
        self.field_tests: list[FieldTest] = []

    def problem(self, line: int, text: str) -> None:
        self.problems.append((line, f"{self.where} line {line}: {text}"))

    def check_keys(self, data: Mapping[Any, Any], allowed: Sequence[str], what: str) -> None:
        for key in data:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f"; use one of: {', '.join(allowed)}"
                self.problem(_line_of(data, key, 0), f'unknown key "{key}" in {what}{hint}')

    # technology / category names

    def technology(self, name: Any, line: int) -> str | None:
        if not isinstance(name, str) or not name.strip():
            self.problem(
                line, f"technology must be a name, not {name!r}; write e.g. `technology: Shopify`"
            )
            return None
        found = self.tech_by_lower.get(name.strip().lower())
        if found is None:
            hint = did_you_mean(name, self.vocab.technologies)
            if not hint:
                hint = "; check the name in the signature library (`ls signatures/`)"
            self.problem(line, f'unknown technology "{name}"{hint}')
        return found

    def category(self, name: Any, line: int) -> str | None:
        if not isinstance(name, str) or not name.strip():
            self.problem(
                line, f"category must be a name, not {name!r}; write e.g. `category: Analytics`"
            )
            return None
        found = self.cat_by_lower.get(name.strip().lower())
        if found is None:
            hint = did_you_mean_words(name, self.vocab.categories)
            if not hint:
                hint = "; see signatures/categories.yaml for the list"
            self.problem(line, f'unknown category "{name}"{hint}')
        return found

    def tech_ref(self, item: Any, line: int, what: str) -> TechTest | None:
        """``Shopify`` or ``{technology: Shopify, version: ">=2"}`` or ``{category: Analytics}``."""
        if isinstance(item, str):
            name = self.technology(item, line)
            return TechTest("technology", name) if name else None
        if isinstance(item, dict):
            line = getattr(item, "line", line)
            extra = [k for k in item if k not in LEAF_KEYS]
            if extra or ("technology" in item) == ("category" in item):
                self.problem(
                    line,
                    f"{what}: expected a technology name, `technology: NAME` or `category: NAME`, "
                    f"got {dict(item)!r}",
                )
                return None
            return self.tech_leaf(item)
        self.problem(line, f"{what}: expected a technology name or `category: NAME`, got {item!r}")
        return None

    def tech_leaf(self, item: Mapping[Any, Any]) -> TechTest | None:
        kind: Literal["technology", "category"] = "technology" if "technology" in item else "category"
        if kind == "technology":
            name = self.technology(item["technology"], _line_of(item, "technology", 0))
        else:
            name = self.category(item["category"], _line_of(item, "category", 0))
        version = None
        if "version" in item:
            if kind == "category":
                self.problem(
                    _line_of(item, "version", 0),
                    "`version` needs a `technology` beside it; a category has no version",
                )
            else:
                version = self.version(item["version"], _line_of(item, "version", 0))
        before = len(self.problems)
        within, older = self.first_seen(item)
        confidence = self.whole(item, "min_confidence", 0, 100, "`min_confidence: 75`")
        pages = item.get("pages_seen")
        if isinstance(pages, dict) and set(pages) == {"at_least"}:
            pages = pages["at_least"]
        min_pages = self.whole({"pages_seen": pages}, "pages_seen", 1, 1000, "`pages_seen: {at_least: 2}`", _line_of(item, "pages_seen", 0)) if "pages_seen" in item else None
        pricing, only = self.pricing(item, kind, name)
        at_least = 1
        if "at_least" in item:
            if kind == "technology":
                self.problem(
                    _line_of(item, "at_least", 0),
                    "`at_least` counts the tools of a category; use it with `category:`, "
                    "e.g. `{category: Analytics, at_least: 3}`",
                )
            else:
                at_least = self.whole(item, "at_least", 1, 1000, "`at_least: 3`") or 1
        if name is None or len(self.problems) != before:
            return None
        return TechTest(
            kind, name, version, within, older, confidence, min_pages, pricing, only, at_least
        )

    def whole(
        self, item: Mapping[Any, Any], key: str, low: int, high: int, example: str, line: int | None = None
    ) -> int | None:
        if key not in item:
            return None
        value = item[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(
                line if line is not None else _line_of(item, key, 0),
                f"`{key}` takes a whole number from {low} to {high}, got {value!r}; write e.g. {example}",
            )
            return None
        return value

    def first_seen(self, item: Mapping[Any, Any]) -> tuple[int | None, int | None]:
        if "first_seen" not in item:
            return None, None
        spec = item["first_seen"]
        line = _line_of(item, "first_seen", 0)
        if not isinstance(spec, dict) or not spec or set(spec) - {"within_days", "before_days"}:
            self.problem(
                line,
                f"`first_seen` takes `{{within_days: N}}` (adopted recently) or `{{before_days: N}}` "
                f"(a long-time user), got {spec!r}",
            )
            return None, None
        within = self.whole(spec, "within_days", 1, 36500, "`first_seen: {within_days: 90}`", line)
        before = self.whole(spec, "before_days", 0, 36500, "`first_seen: {before_days: 730}`", line)
        if within is not None and before is not None and before >= within:
            self.problem(
                line,
                f"`first_seen` within {within} and before {before} days matches nothing; "
                "`before_days` must be smaller than `within_days`",
            )
        return within, before

    def pricing(
        self, item: Mapping[Any, Any], kind: str, name: str | None
    ) -> tuple[tuple[str, ...], frozenset[str] | None]:
        if "pricing" not in item:
            return (), None
        raw = item["pricing"]
        line = _line_of(item, "pricing", 0)
        tags = raw if isinstance(raw, list) else [raw]
        bad = [t for t in tags if not isinstance(t, str) or t.lower() not in PRICING_TAGS]
        if bad or not tags:
            word = bad[0] if bad else raw
            hint = did_you_mean(str(word), PRICING_TAGS) or f"; use one of: {', '.join(PRICING_TAGS)}"
            self.problem(line, f"unknown pricing tier {word!r}{hint}")
            return (), None
        wanted = tuple(t.lower() for t in tags)
        only = frozenset(
            tech
            for tech, have in self.vocab.pricing.items()
            if set(wanted) & set(have)
            and (kind != "category" or name in self.vocab.technologies.get(tech, ()))
        )
        return wanted, only

    def version(self, value: Any, line: int) -> VersionTest | None:
        text = str(value).strip()
        clauses: list[tuple[str, tuple[int, ...]]] = []
        for part in text.split(","):
            m = re.fullmatch(r"\s*(>=|<=|==|!=|>|<|=)?\s*v?(\d+(?:\.\d+)*)\s*", part)
            if not m:
                self.problem(
                    line,
                    f'version "{text}" is not a version test; write e.g. "5", ">=2.0" or ">=2, <3"',
                )
                return None
            op = m.group(1) or "prefix"
            clauses.append(
                ("==" if op == "=" else op, tuple(int(x) for x in m.group(2).split(".")))
            )
        return VersionTest(text, tuple(clauses))

    # firmographic tests

    def scalar(self, value: Any, line: int, column: str) -> Scalar | None:
        if isinstance(value, bool):
            spelled = "NO, no, off or false" if not value else "YES, yes, on or true"
            self.problem(
                line,
                f"{column}: YAML reads an unquoted {spelled} as {str(value).lower()}; "
                'quote the value (e.g. "NO") if you meant text',
            )
            return None
        if isinstance(value, str) and (m := _COMPARISON.fullmatch(value)):
            op = {">=": "at_least", "=>": "at_least", ">": "at_least", "<=": "at_most"}.get(
                m.group(1), "at_most" if m.group(1).startswith("<") else "equals"
            )
            number = m.group(2).replace(",", "")
            self.problem(
                line,
                f'{column}: "{value}" is text, so it would be compared as text, not as a number; '
                f"write `{column}: {{{op}: {number}}}`"
                + (" (at_least/at_most include the bound)" if m.group(1) in (">", "<") else ""),
            )
            return None
        if isinstance(value, (str, int, float)):
            return value
        self.problem(line, f"{column}: expected text or a number, got {value!r}")
        return None

    def field_test(self, column: Any, spec: Any, line: int) -> FieldTest | None:
        test = self._field_test(column, spec, line)
        if test is not None:
            self.field_tests.append(test)
        return test

    def _field_test(self, column: Any, spec: Any, line: int) -> FieldTest | None:
        if not isinstance(column, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
            self.problem(
                line, f"{column!r} is not an account column name; use snake_case like `employees`"
            )
            return None
        if isinstance(spec, list):
            return self._values_test(column, "in", spec, line)
        if not isinstance(spec, dict):
            value = self.scalar(spec, line, column)
            return FieldTest(column, "equals", (value,), line) if value is not None else None
        if len(spec) != 1:
            self.problem(
                line,
                f"{column}: give exactly one test ({', '.join(TEST_OPS)}), got {', '.join(map(str, spec)) or 'none'}; "
                "put several in an `all:` list",
            )
            return None
        op, arg = next(iter(spec.items()))
        line = _line_of(spec, op, line)
        if op not in TEST_OPS:
            hint = did_you_mean(str(op), TEST_OPS) or f"; use one of: {', '.join(TEST_OPS)}"
            self.problem(line, f'{column}: unknown test "{op}"{hint}')
            return None
        if op == "present":
            if not isinstance(arg, bool):
                self.problem(line, f"{column}: `present` takes true or false, got {arg!r}")
                return None
            return FieldTest(column, "present", (int(arg),), line)
        if op in ("in", "not_in"):
            if not isinstance(arg, list):
                arg = [arg]
            return self._values_test(column, op, arg, line)
        if op == "between":
            if not (isinstance(arg, list) and len(arg) == 2):
                self.problem(
                    line,
                    f"{column}: `between` takes [low, high], got {arg!r}; write e.g. [50, 500]",
                )
                return None
            low, high = arg
            if not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high)
            ):
                self.problem(line, f"{column}: `between` takes two numbers, got {arg!r}")
                return None
            if low > high:
                self.problem(
                    line, f"{column}: `between` [{low}, {high}] is empty; put the low bound first"
                )
                return None
            return FieldTest(column, "between", (low, high), line)
        if op in ("at_least", "at_most"):
            if not isinstance(arg, (int, float)) or isinstance(arg, bool):
                self.problem(line, f"{column}: `{op}` takes a number, got {arg!r}")
                return None
            return FieldTest(column, op, (arg,), line)
        value = self.scalar(arg, line, column)
        return FieldTest(column, "equals", (value,), line) if value is not None else None

    def _values_test(self, column: str, op: str, items: list[Any], line: int) -> FieldTest | None:
        if not items:
            self.problem(line, f"{column}: an empty list matches nothing; list at least one value")
            return None
        values: list[Scalar] = []
        for i, item in enumerate(items):
            value = self.scalar(item, _line_of(items, i, line), column)
            if value is not None:
                values.append(value)
        if len(values) != len(items):
            return None
        return FieldTest(column, op, tuple(values), line)

    # conditions

    def condition_list(self, items: Any, line: int, what: str) -> list[Condition]:
        if isinstance(items, dict):
            items = _as_line_list([items], getattr(items, "line", line))
        if not isinstance(items, list) or not items:
            self.problem(line, f"{what}: expected a non-empty list of conditions")
            return []
        out = []
        for i, item in enumerate(items):
            cond = self.condition(item, _line_of(items, i, line), what)
            if cond is not None:
                out.append(cond)
        return out

    def condition(self, item: Any, line: int, what: str) -> Condition | None:
        if isinstance(item, str):
            name = self.technology(item, line)
            return TechTest("technology", name) if name else None
        if not isinstance(item, dict) or not item:
            self.problem(
                line,
                f"{what}: a condition is a technology name or a mapping like `technology: Shopify`, "
                f"`category: Analytics`, `employees: {{at_least: 50}}`; got {item!r}",
            )
            return None
        line = getattr(item, "line", line)
        parts: list[Condition] = []
        ok = True
        if "removed" in item or "within_days" in item:
            removed = self.removed(item, line)
            ok = removed is not None
            if removed is not None:
                parts.append(removed)
        elif any(k in item for k in LEAF_KEYS):
            if "technology" in item and "category" in item:
                self.problem(line, "use `technology` or `category` in one condition, not both")
                ok = False
            elif "technology" not in item and "category" not in item:
                modifier = next(k for k in item if k in TECH_MODIFIERS)
                self.problem(line, f"`{modifier}` needs a `technology` or `category` beside it")
                ok = False
            else:
                leaf = self.tech_leaf(item)
                ok = ok and leaf is not None
                if leaf is not None:
                    parts.append(leaf)
        for key in item:
            key_line = _line_of(item, key, line)
            if key in LEAF_KEYS or key in REMOVED_KEYS:
                continue
            if key in GROUP_KEYS:
                inner = self.condition_list(item[key], key_line, f"`{key}`")
                if not inner:
                    ok = False
                    continue
                if key == "not":
                    parts.append(Group("not", (Group("any", tuple(inner)),)))
                else:
                    parts.append(Group("all" if key == "all" else "any", tuple(inner)))
                continue
            test = self.field_test(key, item[key], key_line)
            ok = ok and test is not None
            if test is not None:
                parts.append(test)
        if not ok or not parts:
            return None
        return parts[0] if len(parts) == 1 else Group("all", tuple(parts))

    def removed(self, item: Mapping[Any, Any], line: int) -> RemovedTest | None:
        if "removed" not in item:
            self.problem(line, "`within_days` needs `removed: TECHNOLOGY` beside it")
            return None
        extra = [k for k in item if k in LEAF_KEYS]
        if extra:
            self.problem(
                line,
                f"`removed` takes a technology name and `within_days`, not `{extra[0]}`; "
                "write e.g. `{removed: Klaviyo, within_days: 180}`",
            )
            return None
        name = self.technology(item["removed"], _line_of(item, "removed", line))
        within = self.whole(item, "within_days", 1, 36500, "`within_days: 180`")
        if name is None or ("within_days" in item and within is None):
            return None
        return RemovedTest(name, within)

    # sections

    def product(self, data: Any, line: int) -> tuple[str, tuple[str, ...], list[CohortRule]]:
        if not isinstance(data, dict):
            self.problem(
                line, "`product` must be a mapping with `name`, `category`, `integrates_with`..."
            )
            return "", (), []
        self.check_keys(data, PRODUCT_KEYS, "product")
        name = data.get("name", "")
        if not isinstance(name, str) or not name.strip():
            self.problem(
                getattr(data, "line", line), "product needs a `name`; add `name: Your Product`"
            )
            name = ""
        cats: list[str] = []
        if "category" in data:
            raw = data["category"]
            cline = _line_of(data, "category", line)
            for i, c in enumerate(raw if isinstance(raw, list) else [raw]):
                found = self.category(
                    c, _line_of(raw, i, cline) if isinstance(raw, list) else cline
                )
                if found:
                    cats.append(found)
        cohorts: list[CohortRule] = []
        relations = (
            ("integrates_with", "integration", "runs a technology the product integrates with"),
            ("competitors", "displacement", "runs a competitor: a switching case"),
            ("complements", "complement", "runs an adjacent tool that implies a need"),
        )
        competitor_tests: list[TechTest] = []
        for key, kind, description in relations:
            if key not in data:
                continue
            raw = data[key]
            kline = _line_of(data, key, line)
            if not isinstance(raw, list) or not raw:
                self.problem(
                    kline,
                    f"`{key}` must be a non-empty list of technology names or `category: NAME`",
                )
                continue
            tests = []
            for i, entry in enumerate(raw):
                t = self.tech_ref(entry, _line_of(raw, i, kline), f"`{key}`")
                if t is not None:
                    tests.append(t)
            if len(tests) == len(raw):
                cohorts.append(CohortRule(kind, kind, description, Group("any", tuple(tests))))
                if kind == "displacement":
                    competitor_tests = tests
        if cats:
            taken = tuple(TechTest("category", c) for c in cats) + tuple(competitor_tests)
            cohorts.append(
                CohortRule(
                    "whitespace",
                    "whitespace",
                    f"nothing in {' / '.join(cats)} and no competitor yet",
                    Group("not", (Group("any", taken),)),
                )
            )
        return name, tuple(cats), cohorts

    def market(self, data: Any, line: int) -> Group:
        if data is None:
            return Group("all", ())
        if not isinstance(data, dict):
            self.problem(
                line,
                "`market` must be a mapping of account column -> test, e.g. `country: [US, GB]`",
            )
            return Group("all", ())
        tests: list[Condition] = []
        leaf = _LineDict({k: v for k, v in data.items() if k in LEAF_KEYS or k in REMOVED_KEYS})
        leaf.line = line
        leaf.lines = {k: _line_of(data, k, line) for k in leaf}
        for key, spec in data.items():
            kline = _line_of(data, key, line)
            if key in leaf:
                if key in ("technology", "category", "removed"):
                    cond = self.condition(leaf, kline, "market")
                    if cond is not None:
                        tests.append(cond)
                continue
            if key in GROUP_KEYS:
                inner = self.condition_list(spec, kline, f"market `{key}`")
                if inner:
                    op: Literal["all", "any"] = "any" if key == "any" else "all"
                    group = Group(op, tuple(inner))
                    tests.append(Group("not", (Group("any", tuple(inner)),)) if key == "not" else group)
                continue
            test = self.field_test(key, spec, kline)
            if test is not None:
                tests.append(test)
        if leaf and not any(k in leaf for k in ("technology", "category", "removed")):
            self.condition(leaf, line, "market")  # reports the modifier without a technology
        return Group("all", tuple(tests))

    def priority(self, data: Any, line: int, names: Sequence[str]) -> tuple[str, ...]:
        if data is None:
            return ()
        if not isinstance(data, list) or not data:
            self.problem(
                line,
                "`priority` must list cohort names, best first, e.g. `[displacement, integration]`",
            )
            return ()
        out: list[str] = []
        for i, name in enumerate(data):
            nline = _line_of(data, i, line)
            if name not in names or name == UNKNOWN:
                hint = did_you_mean(str(name), names) or f"; cohorts are: {', '.join(names)}"
                self.problem(nline, f'priority: unknown cohort "{name}"{hint}')
            elif name in out:
                self.problem(nline, f'priority: "{name}" is listed twice; keep one')
            else:
                out.append(str(name))
        return tuple(out)

    def columns(self, columns: Collection[str] | None) -> None:
        """Report every column test naming a column the accounts do not have."""
        tests = sorted(self.field_tests, key=lambda t: t.line)
        if columns is None:
            if tests:
                lines = list(dict.fromkeys(t.line for t in tests))
                names = sorted({t.column for t in tests})
                what = "column" if len(names) == 1 else "columns"
                self.problem(
                    lines[0],
                    f"the rules test the account {what} {', '.join(f'`{n}`' for n in names)}"
                    + (f" (also lines {', '.join(map(str, lines[1:]))})" if len(lines) > 1 else "")
                    + ", but no accounts were imported; run `detector accounts import FILE.csv` first",
                )
            return
        seen: set[tuple[int, str]] = set()
        for test in tests:
            if test.column in columns or (test.line, test.column) in seen:
                continue
            seen.add((test.line, test.column))
            keyword = difflib.get_close_matches(test.column, LEAF_KEYS + GROUP_KEYS, 1, 0.8)
            hint = (
                f'; did you mean the keyword "{keyword[0]}"?'
                if keyword
                else did_you_mean(test.column, columns)
                or f"; the columns are: {', '.join(sorted(columns))}"
            )
            self.problem(test.line, f'no account column "{test.column}"{hint}')


    def freshness(self, data: Any, line: int) -> int | None:
        if data is None:
            return None
        if not isinstance(data, dict) or set(data) != {"max_age_days"}:
            self.problem(line, "`freshness` takes one key: `max_age_days: 90`")
            return None
        days = data["max_age_days"]
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            self.problem(
                _line_of(data, "max_age_days", line),
                f"`max_age_days` must be a whole number of days >= 1, got {days!r}",
            )
            return None
        return days

    def maturity(self, data: Any, line: int) -> Maturity | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            self.problem(line, "`maturity` must be a mapping with `weights` and `levels`")
            return None
        self.check_keys(data, ("weights", "levels"), "maturity")
        weights: list[Weight] = []
        raw = data.get("weights")
        wline = _line_of(data, "weights", line)
        if not isinstance(raw, list) or not raw:
            self.problem(
                wline, "`maturity.weights` must be a list like `- {category: Analytics, weight: 1}`"
            )
        else:
            for i, entry in enumerate(raw):
                eline = _line_of(raw, i, wline)
                if not isinstance(entry, dict) or "weight" not in entry:
                    self.problem(
                        eline,
                        f"maturity weight needs `weight:` beside a technology or category, got {entry!r}",
                    )
                    continue
                w = entry["weight"]
                if not isinstance(w, (int, float)) or isinstance(w, bool):
                    self.problem(
                        _line_of(entry, "weight", eline), f"`weight` must be a number, got {w!r}"
                    )
                    continue
                ref = {k: v for k, v in entry.items() if k != "weight"}
                ref_item = _LineDict(ref)
                ref_item.line = eline
                ref_item.lines = {k: _line_of(entry, k, eline) for k in ref}
                test = self.tech_ref(ref_item, eline, "maturity weight")
                if test is not None:
                    weights.append(Weight(test, float(w)))
        levels: list[Level] = []
        raw_levels = data.get("levels")
        lline = _line_of(data, "levels", line)
        if not isinstance(raw_levels, dict) or not raw_levels:
            self.problem(
                lline,
                "`maturity.levels` must map level names to minimum scores, e.g. `advanced: 4`",
            )
        else:
            for name, minimum in raw_levels.items():
                nline = _line_of(raw_levels, name, lline)
                if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                    self.problem(
                        nline,
                        f"maturity level name {name!r} must be lower-case letters, digits, - or _",
                    )
                    continue
                if not isinstance(minimum, (int, float)) or isinstance(minimum, bool):
                    self.problem(
                        nline,
                        f"maturity level {name}: minimum score must be a number, got {minimum!r}",
                    )
                    continue
                levels.append(Level(name, float(minimum)))
            levels.sort(key=lambda lv: lv.min_score)
            if levels and levels[0].min_score > 0:
                self.problem(
                    lline,
                    f"the lowest maturity level ({levels[0].name}) starts at {levels[0].min_score:g}; "
                    "start one level at 0 so every scanned account gets a level",
                )
        if len(weights) != len(raw or []) or not levels:
            return None
        return Maturity(tuple(weights), tuple(levels))

    def cohorts(self, data: Any, line: int, taken: set[str]) -> list[CohortRule]:
        if data is None:
            return []
        if not isinstance(data, list):
            self.problem(line, "`cohorts` must be a list of `- name: ...` entries")
            return []
        out = []
        for i, entry in enumerate(data):
            eline = _line_of(data, i, line)
            if not isinstance(entry, dict):
                self.problem(
                    eline,
                    f"a cohort must be a mapping with `name` and `all`/`any`/`not`, got {entry!r}",
                )
                continue
            self.check_keys(entry, ("name", "description", "all", "any", "not"), "a cohort")
            name = entry.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                self.problem(
                    eline,
                    f"cohort name {name!r} must be lower-case letters, digits, - or _ (e.g. `big-shopify`)",
                )
                continue
            if name in taken or name.startswith("maturity-") or name in BUILTIN_KINDS:
                self.problem(
                    _line_of(entry, "name", eline),
                    f'cohort name "{name}" is already used; pick another name',
                )
                continue
            taken.add(name)
            desc = entry.get("description", "")
            parts: list[Condition] = []
            ok = True
            for key in GROUP_KEYS:
                if key in entry:
                    inner = self.condition_list(
                        entry[key], _line_of(entry, key, eline), f"cohort {name} `{key}`"
                    )
                    ok = ok and bool(inner)
                    if inner:
                        if key == "not":
                            parts.append(Group("not", (Group("any", tuple(inner)),)))
                        else:
                            parts.append(Group("all" if key == "all" else "any", tuple(inner)))
            if not any(k in entry for k in GROUP_KEYS):
                self.problem(
                    eline, f'cohort "{name}" has no condition; add `all:`, `any:` or `not:`'
                )
                continue
            if ok:
                out.append(CohortRule(name, "custom", str(desc), Group("all", tuple(parts))))
        return out

    def tiers(self, data: Any, line: int, cohort_names: Sequence[str]) -> Tiers | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            self.problem(
                line, "`tiers` must be a mapping with `points`, `firmographics` and `thresholds`"
            )
            return None
        self.check_keys(data, ("points", "firmographics", "thresholds"), "tiers")
        points: list[tuple[str, float]] = []
        raw = data.get("points") or {}
        pline = _line_of(data, "points", line)
        if not isinstance(raw, dict):
            self.problem(
                pline, "`tiers.points` must map cohort names to points, e.g. `displacement: 40`"
            )
            raw = {}
        for name, value in raw.items():
            nline = _line_of(raw, name, pline)
            if name not in cohort_names or name == UNKNOWN:
                hint = (
                    did_you_mean(str(name), cohort_names)
                    or f"; cohorts are: {', '.join(cohort_names)}"
                )
                self.problem(nline, f'tiers.points: unknown cohort "{name}"{hint}')
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.problem(nline, f"tiers.points {name}: points must be a number, got {value!r}")
                continue
            points.append((name, float(value)))
        bonuses: list[Bonus] = []
        raw_f = data.get("firmographics") or []
        fline = _line_of(data, "firmographics", line)
        if not isinstance(raw_f, list):
            self.problem(
                fline,
                "`tiers.firmographics` must be a list like `- {points: 20, employees: {at_least: 200}}`",
            )
            raw_f = []
        for i, entry in enumerate(raw_f):
            eline = _line_of(raw_f, i, fline)
            if not isinstance(entry, dict) or "points" not in entry or len(entry) < 2:
                self.problem(
                    eline,
                    f"a firmographic bonus needs `points` and at least one column test, got {entry!r}",
                )
                continue
            pts = entry["points"]
            if not isinstance(pts, (int, float)) or isinstance(pts, bool):
                self.problem(eline, f"`points` must be a number, got {pts!r}")
                continue
            tests = []
            for key, spec in entry.items():
                if key == "points":
                    continue
                kline = _line_of(entry, key, eline)
                if key in LEAF_KEYS or key in GROUP_KEYS:
                    self.problem(
                        kline,
                        f"tiers.firmographics tests account columns; score `{key}` through a cohort's points",
                    )
                    continue
                t = self.field_test(key, spec, kline)
                if t is not None:
                    tests.append(t)
            if len(tests) == len(entry) - 1:
                cond: Condition = tests[0] if len(tests) == 1 else Group("all", tuple(tests))
                bonuses.append(Bonus(cond, float(pts)))
        thresholds: list[tuple[int, float]] = []
        raw_t = data.get("thresholds")
        tline = _line_of(data, "thresholds", line)
        if not isinstance(raw_t, dict) or not raw_t:
            self.problem(
                tline,
                "`tiers.thresholds` must map tiers to minimum scores, e.g. `1: 70`, `2: 40`, `3: 10`",
            )
        else:
            for tier, minimum in raw_t.items():
                nline = _line_of(raw_t, tier, tline)
                if tier not in (1, 2, 3):
                    self.problem(nline, f"tier {tier!r}: tiers are 1, 2 and 3")
                    continue
                if not isinstance(minimum, (int, float)) or isinstance(minimum, bool):
                    self.problem(
                        nline, f"tier {tier}: minimum score must be a number, got {minimum!r}"
                    )
                    continue
                thresholds.append((tier, float(minimum)))
            thresholds.sort()
            mins = [m for _, m in thresholds]
            if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
                self.problem(
                    tline,
                    "tier thresholds must fall from tier 1 to tier 3 (e.g. 1: 70, 2: 40, 3: 10)",
                )
        if not thresholds:
            return None
        return Tiers(tuple(points), tuple(bonuses), tuple(thresholds))


def _as_line_list(items: list[Any], line: int) -> _LineList:
    out = _LineList(items)
    out.line = line
    out.lines = [line] * len(items)
    return out


#: YAML parser messages -> what they mean in a rules file and how to fix it.
_YAML_WORDS = (
    ("found character '\\t'", "a tab character; indent with spaces only"),
    (
        "mapping values are not allowed",
        (
            "a `:` YAML did not expect here; check this line's indentation against the line "
            "above (nested keys go under their parent, siblings line up) and quote text "
            "containing `: `"
        ),
    ),
    ("could not find expected ':'", "a line with no `key: value`; add the `:` or quote the text"),
    ("expected <block end>", ("the indentation does not line up; indent the items of one list "
     "or mapping by the same number of spaces")),
    ("did not find expected key", ("the indentation does not line up; indent the items of one "
     "list or mapping by the same number of spaces")),
    ("did not find expected '-' indicator", ("a list item does not line up with the ones above; "
     "start every `- item` of a list in the same column")),
    ("found unexpected end of stream", "a quote is never closed; close it on the same line"),
    ("expected ',' or ']'", "a `[` list is never closed; end it with `]` on the same line"),
    ("expected ',' or '}'", "a `{` mapping is never closed; end it with `}` on the same line"),
    ("found undefined alias", "a `*name` with no `&name` above it; quote values that start with `*`"),
    ("found character that cannot start any token", ("a value starts with a character YAML "
     "reserves (`@`, `` ` ``, `%`); quote the value")),
)


def _yaml_problem(where: str, exc: yaml.YAMLError) -> str:
    problem = str(getattr(exc, "problem", None) or exc)
    mark = getattr(exc, "problem_mark", None)
    for needle, words in _YAML_WORDS:
        if needle in problem:
            if "never closed" in words:
                # The parser notices at the end; the line to fix is where it was opened.
                mark = getattr(exc, "context_mark", None) or mark
            line = f" line {mark.line + 1}" if mark is not None else ""
            return f"{where}{line}: this is not valid YAML: {words} (the parser says: {problem})"
    line = f" line {mark.line + 1}" if mark is not None else ""
    return f"{where}{line}: this is not valid YAML ({problem}); fix the syntax at that line"


#: ``columns`` default: do not check account columns (a caller without accounts at hand, such as a rules check).
UNCHECKED: Collection[str] = frozenset({"\0unchecked"})


def parse_rules(
    text: str,
    vocabulary: Vocabulary,
    where: str = "rules.yaml",
    *,
    columns: Collection[str] | None = UNCHECKED,
) -> Rules:
    """Parse and validate rules text; raise RulesError listing every problem, by line.

    ``columns``: the accounts' columns (None: no accounts imported), so that column tests
    naming a missing one are reported with every other problem, in one pass.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise RulesError(f'{where} line {exc.line}: "{exc.key}" appears twice; keep one') from None
    except yaml.YAMLError as exc:
        raise RulesError(_yaml_problem(where, exc)) from None
    if not isinstance(data, dict):
        raise RulesError(
            f"{where} line 1: a rules file is a mapping with `product:`, `market:`, `cohorts:`..."
        )
    p = _Parser(where, vocabulary)
    p.check_keys(data, TOP_KEYS, "the rules file")
    name: str = ""
    cats: tuple[str, ...] = ()
    cohorts: list[CohortRule] = []
    if "product" in data:
        name, cats, cohorts = p.product(data["product"], _line_of(data, "product", 1))
    taken = {c.name for c in cohorts}
    cohorts += p.cohorts(data.get("cohorts"), _line_of(data, "cohorts", 1), taken)
    maturity = p.maturity(data.get("maturity"), _line_of(data, "maturity", 1))
    if not cohorts and maturity is None and not p.problems:
        p.problem(1, "no cohorts defined; add `product:` relations, `maturity:` or `cohorts:`")
    names = [c.name for c in cohorts] + ([lv.cohort for lv in maturity.levels] if maturity else [])
    priority = p.priority(data.get("priority"), _line_of(data, "priority", 1), names)
    rules = Rules(
        product=name,
        product_categories=cats,
        market=p.market(data.get("market"), _line_of(data, "market", 1)),
        max_age_days=p.freshness(data.get("freshness"), _line_of(data, "freshness", 1)),
        cohorts=tuple(cohorts),
        maturity=maturity,
        tiers=p.tiers(data.get("tiers"), _line_of(data, "tiers", 1), names + [UNKNOWN]),
        source=where,
        priority=priority,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    if columns is not UNCHECKED:
        p.columns(columns)
    if p.problems:
        problems = list(dict.fromkeys(text for _, text in sorted(p.problems, key=lambda t: t[0])))
        n = len(problems)
        head = f"{n} problems in the rules file:\n" if n > 1 else ""
        raise RulesError(head + "\n".join(problems))
    return rules


def load_rules(
    path: Path | str, vocabulary: Vocabulary, *, columns: Collection[str] | None = UNCHECKED
) -> Rules:
    """Read and validate a rules file (``columns``: see :func:`parse_rules`)."""
    from detector.textinput import read_text

    text, _ = read_text(path)  # MissingInputError, BinaryInputError; Windows-1252 read as such
    return parse_rules(text, vocabulary, str(path), columns=columns)
