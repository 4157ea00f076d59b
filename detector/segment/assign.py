"""Cohort rules -> memberships, each with its reason; pure, works on plain records."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from detector.segment.rules import (
    UNKNOWN,
    Condition,
    FieldTest,
    Group,
    Level,
    RemovedTest,
    Rules,
    Scalar,
    TechTest,
    VersionTest,
    Weight,
    mentioned,
)

MAX_COHORTS = 8
MIN_COHORTS = 3
#: A cohort holding more than this share of the market is too broad to message.
MAX_SHARE = 0.5
#: ``primary_cohort`` of accounts that have none: outside the market, never scanned, scanned
#: too long ago, in the market but in no cohort.
OUT_OF_MARKET = "out-of-market"
STALE = "stale"
NONE = "none"
_VERSION = re.compile(r"\d+(?:\.\d+)*")

AccountValue = Scalar | None


@dataclass(frozen=True, slots=True)
class Seen:
    """One detection as segmentation needs it: what, which version, categories, when seen.

    ``removed_at`` is set for a technology the site dropped (history marked it removed).
    """

    technology: str
    version: str | None
    categories: tuple[str, ...]
    last_seen: str
    first_seen: str = ""
    confidence: int = 100
    pages: int = 0
    removed_at: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """An account: its domain, firmographic columns, last successful scan and detections."""

    domain: str
    fields: Mapping[str, AccountValue]
    last_ok_at: str | None = None
    last_status: str | None = None  # "ok", or why the last scan failed ("dns", "timeout"...)
    detections: tuple[Seen, ...] = ()
    #: Technologies the site dropped (read only when a rule tests ``removed``).
    removed: tuple[Seen, ...] = ()
    #: When its first successful scan finished (read only when a rule tests adoption): a
    #: technology already there then has an unknown adoption date, never a recent one.
    first_ok_at: str | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    """An account in a cohort, why, and the detections behind it."""

    cohort: str
    domain: str
    reason: str
    evidence: tuple[Seen, ...] = ()
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Assignment:
    """Everything segmentation decided about one in-market account."""

    domain: str
    memberships: tuple[Membership, ...]
    score: float | None = None
    tier: int | None = None
    scan_stale: bool = False
    #: The one cohort for a CRM picklist (by the rules' ``priority``), or ``none``/``stale``/...
    primary: str = NONE
    #: Where the score comes from: (cohort or firmographic test, points), in rules order.
    breakdown: tuple[tuple[str, float], ...] = ()


def plural(n: int, word: str) -> str:
    """A count with its noun.

    >>> plural(1, "account"), plural(3, "account")
    ('1 account', '3 accounts')
    """
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def utc_key(text: str) -> str:
    """An ISO-8601 UTC time as a sortable ``YYYY-MM-DDTHH:MM:SS`` key.

    >>> utc_key("2026-11-20 10:00:00+00:00"), utc_key("2026-11-20T10:00:00Z")
    ('2026-11-20T10:00:00', '2026-11-20T10:00:00')
    """
    return text[:19].replace(" ", "T")


def day_of(text: str) -> str:
    """The date part of an ISO time.

    >>> day_of("2026-11-20T10:00:00Z")
    '2026-11-20'
    """
    return text[:10]


def version_key(text: str) -> tuple[int, ...]:
    """The numeric parts of a version string.

    >>> version_key("5.2.1-beta"), version_key("v10"), version_key("beta")
    ((5, 2, 1), (10,), ())
    """
    m = _VERSION.search(text)
    return tuple(int(x) for x in m.group(0).split(".")) if m else ()


def version_matches(test: VersionTest, version: str | None) -> bool:
    """Whether a detected version passes a version test (no version never passes).

    >>> from detector.segment.rules import VersionTest
    >>> t = VersionTest(">=2, <3", ((">=", (2,)), ("<", (3,))))
    >>> version_matches(t, "2.4.1"), version_matches(t, "3.0"), version_matches(t, None)
    (True, False, False)
    """
    if not version:
        return False
    have = version_key(version)
    if not have:
        return False
    for op, want in test.clauses:
        if op == "prefix":
            ok = have[: len(want)] == want
        else:
            n = max(len(have), len(want))
            a = have + (0,) * (n - len(have))
            b = want + (0,) * (n - len(want))
            ok = {
                ">=": a >= b,
                "<=": a <= b,
                ">": a > b,
                "<": a < b,
                "==": a == b,
                "!=": a != b,
            }[op]
        if not ok:
            return False
    return True


def _number(value: AccountValue) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def _same(a: AccountValue, b: Scalar) -> bool:
    if a is None:
        return False
    if isinstance(b, str) or isinstance(a, str):
        return str(a).strip().lower() == str(b).strip().lower()
    return float(a) == float(b)


def field_matches(test: FieldTest, value: AccountValue) -> bool:
    """Whether an account column value passes a firmographic test.

    >>> from detector.segment.rules import FieldTest
    >>> field_matches(FieldTest("employees", "between", (10, 500)), 250)
    True
    >>> field_matches(FieldTest("country", "in", ("US", "GB")), "gb")
    True
    """
    if value == "":
        value = None
    op = test.op
    if op == "present":
        return (value is not None) == bool(test.values[0])
    if op == "equals":
        return _same(value, test.values[0])
    if op == "in":
        return any(_same(value, v) for v in test.values)
    if op == "not_in":
        return value is not None and not any(_same(value, v) for v in test.values)
    number = _number(value)
    if number is None:
        return False
    if op == "between":
        return float(test.values[0]) <= number <= float(test.values[1])
    if op == "at_least":
        return number >= float(test.values[0])
    return number <= float(test.values[0])


def describe(cond: Condition) -> str:
    """A condition in words, for reasons like "runs no Reviews technology".

    >>> from detector.segment.rules import Group, TechTest
    >>> describe(Group("any", (TechTest("technology", "Yotpo Reviews"), TechTest("category", "Reviews"))))
    'Yotpo Reviews or a Reviews technology'
    """
    if isinstance(cond, TechTest):
        if cond.kind == "category":
            head = f"{_article(cond.name)} {cond.name} technology"
            if cond.at_least > 1:
                head = f"{cond.at_least} or more {cond.name} technologies"
        else:
            head = cond.name + (f" {cond.version.text}" if cond.version else "")
        return head + "".join(f" ({w})" for w in _filter_words(cond))
    if isinstance(cond, RemovedTest):
        when = f" within {cond.within_days} days" if cond.within_days else ""
        return f"dropped {cond.name}{when}"
    if isinstance(cond, FieldTest):
        values = ", ".join(str(v) for v in cond.values)
        words = {
            "equals": f"{cond.column} = {values}",
            "in": f"{cond.column} in [{values}]",
            "not_in": f"{cond.column} not in [{values}]",
            "between": f"{cond.column} between {cond.values[0]} and {cond.values[-1]}",
            "at_least": f"{cond.column} >= {values}",
            "at_most": f"{cond.column} <= {values}",
            "present": f"{cond.column} {'present' if cond.values[0] else 'missing'}",
        }
        return words[cond.op]
    if cond.op == "not":
        return f"not ({describe(cond.items[0])})"
    joiner = " and " if cond.op == "all" else " or "
    return joiner.join(describe(c) for c in cond.items)


def _article(word: str) -> str:
    """``a`` or ``an`` before a word (by its first letter).

    >>> _article("Ecommerce"), _article("Reviews")
    ('an', 'a')
    """
    return "an" if word[:1].lower() in "aeiou" else "a"


def _filter_words(test: TechTest) -> list[str]:
    words = []
    if test.first_seen_within is not None:
        words.append(f"first seen within {test.first_seen_within} days")
    if test.first_seen_before is not None:
        words.append(f"first seen over {test.first_seen_before} days ago")
    if test.min_confidence is not None:
        words.append(f"confidence >= {test.min_confidence}")
    if test.min_pages is not None:
        words.append(f"on >= {test.min_pages} pages")
    if test.pricing:
        words.append(f"pricing {'/'.join(test.pricing)}")
    return words


def _seen_words(seen: Seen) -> str:
    version = f" {seen.version}" if seen.version else ""
    return f"runs {seen.technology}{version}, last seen {day_of(seen.last_seen)}"


def _seen_detail(seen: Seen, test: TechTest, first_scan: str | None = None) -> str:
    """The reason for a detection that passed a filtered test: names the dates and figures."""
    version = f" {seen.version}" if seen.version else ""
    parts = []
    if test.first_seen_within is not None or test.first_seen_before is not None:
        parts.append(f"first seen {day_of(seen.first_seen)}")
        if first_scan and test.first_seen_within is not None:
            parts[-1] += f" (not there at the first scan, {day_of(first_scan)})"
    parts.append(f"last seen {day_of(seen.last_seen)}")
    if test.min_confidence is not None:
        parts.append(f"confidence {seen.confidence}")
    if test.min_pages is not None:
        parts.append(f"on {plural(seen.pages, 'page')}")
    return f"runs {seen.technology}{version}, {', '.join(parts)}"


class _Stack:
    """One account's detections indexed for lookups (by name and by category)."""

    __slots__ = ("by_category", "by_name", "first_ok_at", "removed")

    def __init__(
        self, detections: Iterable[Seen], removed: Iterable[Seen] = (), first_ok_at: str | None = None
    ) -> None:
        self.by_name: dict[str, Seen] = {}
        self.by_category: dict[str, list[Seen]] = {}
        self.removed: dict[str, Seen] = {d.technology: d for d in removed}
        self.first_ok_at = utc_key(first_ok_at) if first_ok_at else None
        # Names are compared as the signature library spells them: the rules parser maps
        # every name to its canonical spelling and detections carry the library's names.
        by_category = self.by_category
        for d in detections:
            self.by_name[d.technology] = d
            for c in d.categories:
                if c in by_category:
                    by_category[c].append(d)
                else:
                    by_category[c] = [d]

    def find(self, test: TechTest) -> list[Seen]:
        if test.kind == "category":
            return self.by_category.get(test.name, [])
        found = self.by_name.get(test.name)
        if found is None:
            return []
        if test.version is not None and not version_matches(test.version, found.version):
            return []
        return [found]


_EMPTY = _Stack(())


# A compiled condition: None when it does not hold, else the reasons and the detections
# behind them. Compiled once per rules file (closures, no per-account dispatch on types).
_Match = tuple[tuple[str, ...], tuple[Seen, ...]]
_Matcher = Callable[[_Stack, Mapping[str, AccountValue]], "_Match | None"]


def compile_condition(cond: Condition, now: datetime | None = None) -> _Matcher:
    """Turn a condition into a function of (detections, account fields).

    ``now`` anchors the timing tests (``first_seen``, ``removed ... within_days``).
    """
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if isinstance(cond, TechTest):
        return _compile_tech(cond) if cond.plain else _compile_filtered(cond, moment)
    if isinstance(cond, RemovedTest):
        return _compile_removed(cond, moment)
    if isinstance(cond, FieldTest):
        return _compile_field(cond)
    if cond.op == "not":
        inner = compile_condition(cond.items[0], moment)
        negation = (_negation(cond.items[0]),)

        def none_of(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
            return None if inner(stack, fields) is not None else (negation, ())

        return none_of
    parts = [compile_condition(item, moment) for item in cond.items]
    if cond.op == "all":

        def all_of(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
            reasons: list[str] = []
            evidence: list[Seen] = []
            for part in parts:
                found = part(stack, fields)
                if found is None:
                    return None
                reasons += found[0]
                evidence += found[1]
            return tuple(reasons), tuple(evidence)

        return all_of

    def any_of(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
        reasons: list[str] = []
        evidence: list[Seen] = []
        matched = False
        for part in parts:
            found = part(stack, fields)
            if found is not None:
                matched = True
                reasons += found[0]
                evidence += found[1]
        return (tuple(reasons), tuple(evidence)) if matched else None

    return any_of


def _compile_tech(test: TechTest) -> _Matcher:
    name = test.name
    if test.kind == "category":

        def in_category(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
            found = stack.by_category.get(name)
            if not found:
                return None
            return tuple(f"{_seen_words(s)} ({name})" for s in found), tuple(found)

        return in_category
    version = test.version

    def runs(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
        seen = stack.by_name.get(name)
        if seen is None or (version is not None and not version_matches(version, seen.version)):
            return None
        return (_seen_words(seen),), (seen,)

    return runs


def _days_before(moment: datetime, days: int) -> str:
    return (moment - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def _compile_filtered(test: TechTest, moment: datetime) -> _Matcher:
    """A technology/category test with timing, confidence, pages, pricing or a count."""
    name = test.name
    version = test.version
    since = _days_before(moment, test.first_seen_within) if test.first_seen_within else None
    until = (
        _days_before(moment, test.first_seen_before) if test.first_seen_before is not None else None
    )

    def passes(seen: Seen, first_scan: str | None) -> bool:
        if version is not None and not version_matches(version, seen.version):
            return False
        if test.only is not None and seen.technology not in test.only:
            return False
        if test.min_confidence is not None and seen.confidence < test.min_confidence:
            return False
        if test.min_pages is not None and seen.pages < test.min_pages:
            return False
        first = utc_key(seen.first_seen or seen.last_seen)
        if since is not None and (first < since or (first_scan is not None and first <= first_scan)):
            # Seen on the domain's first successful scan: adopted then or any time before.
            return False
        return until is None or first <= until

    category = test.kind == "category"

    def runs(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
        candidates: Sequence[Seen]
        if category:
            candidates = stack.by_category.get(name, ())
        else:
            one = stack.by_name.get(name)
            candidates = (one,) if one is not None else ()
        first_scan = stack.first_ok_at
        found = [s for s in candidates if passes(s, first_scan)]
        if len(found) < test.at_least or not found:
            return None
        label = f" ({name})" if category else ""
        reasons = tuple(f"{_seen_detail(s, test, first_scan)}{label}" for s in found)
        if test.at_least > 1:
            reasons = (f"{len(found)} {name} technologies (at least {test.at_least})", *reasons)
        return reasons, tuple(found)

    return runs


def _compile_removed(test: RemovedTest, moment: datetime) -> _Matcher:
    name = test.name
    since = _days_before(moment, test.within_days) if test.within_days else None

    def dropped(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
        seen = stack.removed.get(name)
        if seen is None or name in stack.by_name or not seen.removed_at:
            return None
        if since is not None and utc_key(seen.removed_at) < since:
            return None
        return (
            (f"dropped {name}: last seen {day_of(seen.last_seen)}, "
            f"gone since {day_of(seen.removed_at)}"),
        ), ()

    return dropped


def _compile_field(test: FieldTest) -> _Matcher:
    column = test.column

    def passes(stack: _Stack, fields: Mapping[str, AccountValue]) -> _Match | None:
        value = fields.get(column)
        return ((f"{column} {value}",), ()) if field_matches(test, value) else None

    return passes


def _negation(cond: Condition) -> str:
    if _only_tech(cond):
        words = describe(cond).replace(" or an ", " or ").replace(" or a ", " or ")
        return f"runs no {words.removeprefix('an ').removeprefix('a ')}"
    return describe(Group("not", (cond,)))


def _only_tech(cond: Condition) -> bool:
    if isinstance(cond, TechTest):
        return True
    if isinstance(cond, (FieldTest, RemovedTest)):
        return False
    return cond.op == "any" and all(_only_tech(c) for c in cond.items)


class Segmenter:
    """Applies a Rules object to accounts, as of one moment."""

    def __init__(self, rules: Rules, now: datetime | None = None) -> None:
        self.rules = rules
        self.now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.cutoff: str | None = None
        if rules.max_age_days is not None:
            self.cutoff = (self.now - timedelta(days=rules.max_age_days)).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
        self.points = dict(rules.tiers.points) if rules.tiers else {}
        self.mentions = {rule.name: mentioned(rule.condition) for rule in rules.cohorts}
        now = self.now
        self.matchers = {
            rule.name: compile_condition(rule.condition, now) for rule in rules.cohorts
        }
        #: The market's tests in file order, each with whether it looks at technologies.
        self.market_steps = [
            (item, compile_condition(item, now), not isinstance(item, FieldTest))
            for item in rules.market.items
        ]
        self.bonuses = [
            (describe(b.condition), compile_condition(b.condition, now), b.points)
            for b in (rules.tiers.bonuses if rules.tiers else ())
        ]
        self.primary_order = rules.primary_order

    def market_step(self, account: Account) -> int:
        """How many of the market's tests the account passes in a row (all of them: in market).

        A technology test needs a successful scan: an account never scanned successfully is
        judged by its columns alone (it lands in ``unknown``, not outside the market).
        """
        stack: _Stack | None = None
        for i, (_, matcher, tech) in enumerate(self.market_steps):
            if tech:
                if account.last_ok_at is None:
                    continue
                if stack is None:
                    stack = self._fresh_stack(account)
                if matcher(stack, account.fields) is None:
                    return i
            elif matcher(_EMPTY, account.fields) is None:
                return i
        return len(self.market_steps)

    def in_market(self, account: Account) -> bool:
        """Whether the account passes every market test (columns, and technologies if any)."""
        return self.market_step(account) == len(self.market_steps)

    def _fresh_stack(self, account: Account) -> _Stack:
        cutoff = self.cutoff
        detections = account.detections
        if cutoff is not None:
            detections = tuple(d for d in detections if utc_key(d.last_seen) >= cutoff)
        return _Stack(detections, account.removed, account.first_ok_at)

    def assign(self, account: Account) -> Assignment:
        """Memberships, score and tier of one (in-market) account."""
        if account.last_ok_at is None:
            return Assignment(account.domain, (self._unknown(account),), primary=UNKNOWN)
        scan_stale = self.cutoff is not None and utc_key(account.last_ok_at) < self.cutoff
        old: list[Seen] = []
        fresh: list[Seen] = []
        if self.cutoff is not None:
            cutoff = self.cutoff
            for d in account.detections:
                (fresh if utc_key(d.last_seen) >= cutoff else old).append(d)
        if old:
            fresh_stack = _Stack(fresh, account.removed, account.first_ok_at)
            all_stack = _Stack(account.detections, account.removed, account.first_ok_at)
        else:
            fresh_stack = all_stack = _Stack(account.detections, account.removed, account.first_ok_at)
        memberships: list[Membership] = []
        for rule in self.rules.cohorts:
            # Only a stale detection the rule looks at can change its answer: skip the rest.
            names, categories = self.mentions[rule.name]
            relevant = tuple(
                d for d in old if d.technology in names or not categories.isdisjoint(d.categories)
            )
            m = self._membership(
                rule.name, rule.condition, account, fresh_stack, all_stack, relevant, scan_stale
            )
            if m is not None:
                memberships.append(m)
        if self.rules.maturity is not None:
            memberships.append(
                self._maturity(account, fresh_stack, all_stack, bool(old), scan_stale)
            )
        score, tier, breakdown = self._tier(account, memberships)
        if scan_stale:
            # Firmographics alone must not tier an account whose technologies are that old.
            tier = None
        return Assignment(
            account.domain,
            tuple(memberships),
            score,
            tier,
            scan_stale,
            STALE if scan_stale else self._primary(memberships),
            breakdown,
        )

    def _primary(self, memberships: Sequence[Membership]) -> str:
        have = {m.cohort for m in memberships if not m.stale}
        for name in self.primary_order:
            if name in have:
                return name
        return NONE

    def assign_all(self, accounts: Iterable[Account]) -> Iterator[Assignment]:
        """Assignments of every in-market account, in input order."""
        for account in accounts:
            if self.in_market(account):
                yield self.assign(account)

    def out_of_market(self, account: Account) -> Assignment:
        """The assignment of an account the market leaves out (exported with explicit values)."""
        return Assignment(account.domain, (), primary=OUT_OF_MARKET)

    def _unknown(self, account: Account) -> Membership:
        if account.last_status is None:
            why = "never scanned: crawl it to learn its technologies"
        else:
            why = (
                f"never scanned successfully (last scan failed: {account.last_status}); "
                "not counted as whitespace"
            )
        return Membership(UNKNOWN, account.domain, why)

    def _membership(
        self,
        cohort: str,
        cond: Condition,
        account: Account,
        fresh_stack: _Stack,
        all_stack: _Stack,
        old_detections: tuple[Seen, ...],
        scan_stale: bool,
    ) -> Membership | None:
        matcher = self.matchers[cohort]
        fresh = matcher(fresh_stack, account.fields)
        full = matcher(all_stack, account.fields) if old_detections else fresh
        if fresh is None and full is None:
            return None
        disagree = (fresh is None) != (full is None)
        stale = scan_stale or disagree
        chosen = fresh if fresh is not None else full
        assert chosen is not None
        reason = "; ".join(_dedupe(chosen[0]))
        if fresh is None:
            reason += f" (stale: older than {self.rules.max_age_days} days, so not counted)"
        elif disagree:
            old = old_detections
            words = "; ".join(_seen_words(s) for s in old[:3])
            reason += f" (stale: an older detection disagrees: {words})"
        if scan_stale:
            reason = self._stale_scan_note(account, reason)
        if cond_is_negative(cond):
            reason += f" (scanned {day_of(account.last_ok_at or '')})"
        return Membership(cohort, account.domain, reason, chosen[1], stale)

    def _stale_scan_note(self, account: Account, reason: str) -> str:
        return (
            f"{reason} (stale: last successful scan {day_of(account.last_ok_at or '')}, "
            f"older than {self.rules.max_age_days} days; re-crawl)"
        )

    def _maturity(
        self,
        account: Account,
        fresh_stack: _Stack,
        all_stack: _Stack,
        has_old: bool,
        scan_stale: bool,
    ) -> Membership:
        model = self.rules.maturity
        assert model is not None
        score, parts, evidence = _maturity_score(model.weights, fresh_stack)
        level = _level_for(model.levels, score)
        stale = scan_stale
        if has_old:
            full_score, _, _ = _maturity_score(model.weights, all_stack)
            stale = stale or _level_for(model.levels, full_score) != level
        detail = ", ".join(parts) if parts else "none of the weighted technologies"
        reason = (
            f"maturity score {score:g} ({detail}) reaches {level.name} (>= {level.min_score:g})"
        )
        if stale and not scan_stale:
            reason += f" (stale: counting detections older than {self.rules.max_age_days} days would change the level)"
        if scan_stale:
            reason = self._stale_scan_note(account, reason)
        return Membership(level.cohort, account.domain, reason, evidence, stale)

    def _tier(
        self, account: Account, memberships: Sequence[Membership]
    ) -> tuple[float | None, int | None, tuple[tuple[str, float], ...]]:
        tiers = self.rules.tiers
        if tiers is None:
            return None, None, ()
        points = self.points
        breakdown = [
            (m.cohort, points[m.cohort]) for m in memberships if not m.stale and m.cohort in points
        ]
        for label, matcher, bonus in self.bonuses:
            if matcher(_EMPTY, account.fields) is not None:
                breakdown.append((label, bonus))
        score = sum(p for _, p in breakdown)
        return score, tiers.tier_for(score), tuple(breakdown)


def cond_is_negative(cond: Condition) -> bool:
    """Whether a condition is a bare ``not`` (its reason needs the scan date)."""
    if isinstance(cond, Group) and cond.op == "not":
        return True
    return (
        isinstance(cond, Group)
        and cond.op == "all"
        and len(cond.items) == 1
        and cond_is_negative(cond.items[0])
    )


def _maturity_score(
    weights: Sequence[Weight], stack: _Stack
) -> tuple[float, list[str], tuple[Seen, ...]]:
    score = 0.0
    parts: list[str] = []
    evidence: list[Seen] = []
    for w in weights:
        test = w.test
        found = stack.find(test)
        if found:
            score += w.weight
            names = ", ".join(s.technology for s in found)
            label = test.name if test.kind == "technology" else f"{test.name}: {names}"
            parts.append(f"{label} +{w.weight:g}")
            evidence.extend(s for s in found if s not in evidence)
    return score, parts, tuple(evidence)


def _level_for(levels: Sequence[Level], score: float) -> Level:
    chosen = levels[0]
    for level in levels:
        if score >= level.min_score:
            chosen = level
    return chosen


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def assign_cohorts(
    rules: Rules, accounts: Iterable[Account], now: datetime | None = None
) -> Iterator[Assignment]:
    """Assign every in-market account to its cohorts, with reasons, score and tier."""
    return Segmenter(rules, now).assign_all(accounts)


def summary_warnings(rules: Rules, sizes: Mapping[str, int], stale_scans: int = 0) -> list[str]:
    """Warnings a careful marketer would raise: stale scans, unknowns, empty or too many cohorts.

    >>> from detector.segment.rules import CohortRule, Group, Rules
    >>> rules = Rules("X", (), Group("all", ()), 90, (CohortRule("a", "custom", "", Group("all", ())),), None, None)
    >>> for line in summary_warnings(rules, {"a": 0, "unknown": 2}, stale_scans=1):
    ...     print(line)
    warning: 1 account last scanned successfully more than 90 days ago: its memberships are flagged stale and score nothing; re-crawl
    warning: 2 accounts never scanned successfully: in "unknown", not in any cohort; crawl again
    warning: cohort "a" is empty; check its rule or drop it
    """
    out = []
    if stale_scans:
        out.append(
            f"warning: {plural(stale_scans, 'account')} last scanned successfully more than "
            f"{rules.max_age_days} days ago: {'its' if stale_scans == 1 else 'their'} "
            "memberships are flagged stale and score nothing; re-crawl"
        )
    if sizes.get(UNKNOWN, 0):
        out.append(
            f"warning: {plural(sizes[UNKNOWN], 'account')} never scanned successfully: "
            f'in "{UNKNOWN}", not in any cohort; crawl again'
        )
    names = [n for n in rules.cohort_names if n != UNKNOWN]
    for name in names:
        if sizes.get(name, 0) == 0:
            out.append(f'warning: cohort "{name}" is empty; check its rule or drop it')
    if len(names) > MAX_COHORTS:
        out.append(
            f"warning: {len(names)} cohorts; more than {MAX_COHORTS} is more than a team can "
            "message separately: merge or drop some"
        )
    return out


def is_segment(rules: Rules, cohort: str) -> bool:
    """Whether a cohort is one a team messages: not a maturity level, not ``unknown``."""
    return cohort != UNKNOWN and rules.kind_of(cohort) != "maturity"


def balance_warnings(rules: Rules, accounts: Mapping[str, int], in_market: int) -> list[str]:
    """Warnings about the balance of the segments (maturity levels and ``unknown`` aside).

    ``accounts``: accounts per cohort, stale memberships left out.

    >>> from detector.segment.rules import CohortRule, Group, Rules
    >>> rules = Rules("X", (), Group("all", ()), None, (CohortRule("a", "custom", "", Group("all", ())),), None, None)
    >>> for line in balance_warnings(rules, {"a": 6}, in_market=10):
    ...     print(line)
    warning: cohort "a" holds 60% of the market (6 of 10 accounts): too broad for one message; split it or narrow its rule
    warning: 1 usable cohort (with members, maturity levels aside); fewer than 3 leaves little to choose from: add cohorts or widen their rules
    """
    out = []
    segments = [c for c in rules.cohort_names if is_segment(rules, c)]
    for name in segments:
        n = accounts.get(name, 0)
        if in_market and n / in_market > MAX_SHARE:
            out.append(
                f'warning: cohort "{name}" holds {n / in_market:.0%} of the market '
                f"({n} of {plural(in_market, 'account')}): too broad for one message; "
                "split it or narrow its rule"
            )
    usable = sum(1 for name in segments if accounts.get(name, 0))
    if in_market and usable < MIN_COHORTS:
        out.append(
            f"warning: {plural(usable, 'usable cohort')} (with members, maturity levels aside); "
            f"fewer than {MIN_COHORTS} leaves little to choose from: add cohorts or widen their rules"
        )
    if any(c.kind == "whitespace" for c in rules.cohorts) and not rules.scoped:
        out.append(
            "warning: whitespace is not scoped: every account without a "
            f"{' / '.join(rules.product_categories)} tool counts, whatever it is (a school, a "
            "dental office); add a technology test to `market`, e.g. `category: Ecommerce`, "
            "so whitespace is computed inside your universe"
        )
    return out
