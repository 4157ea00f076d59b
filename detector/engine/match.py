"""Engine: compiled signatures; ``detect(page) -> list[Detection]``.

Load, validate and compile once; match many times.  The semantics follow Wappalyzer's
reference engine (wappalyzer-core 6.10.54): case-insensitive patterns with bounded
repetition, ``\\;version:`` templates, ``\\;confidence:`` weights summed and capped at 100,
``excludes`` applied before ``implies`` (resolved transitively with the implier's
confidence), and technologies that ``require`` another technology or category tried only
once that one is found.

Speed comes from the shape of the data: header, cookie and meta patterns are looked up by
name, script-URL patterns only see script URLs, and the patterns that scan the body are
prefiltered in one pass (Hyperscan, or a pure-Python literal filter) before the exact,
linear-time match (RE2; Python ``re`` for the few patterns RE2 cannot take).

Two modes: ``mode="wappalyzer"`` is exactly the above; the default, ``mode="detector"``,
adds the ``script_loader`` source (:mod:`detector.engine.loader`) and the rules of evidence of
:mod:`detector.engine.evidence` (weak resource hints and snippet comments, anchor hrefs on
segment boundaries, short text words on word boundaries, refined library rules).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from detector.engine import budget
from detector.engine.assets import asset_folders
from detector.engine.assets import build_index as build_asset_index
from detector.engine.cache import cache_path, read_cache, write_cache
from detector.engine.cdn import HOSTS as CDN_HOSTS
from detector.engine.cdn import build_index, match_cdn, package_key, stylesheet_urls
from detector.engine.evidence import (
    POLICY_HEADERS,
    REFINED_RULES,
    WEAK_BUCKET,
    WEAK_HINT,
    WEAK_POLICY,
    ShortWord,
    anchor_counts,
    anchor_substrings,
    foreign_bucket,
    html_weakness,
    is_hint_rel,
    is_share_link,
    loader_confidence,
    path_rule_elsewhere,
    script_name_weakness,
    script_weakness,
    short_word_regex,
    split_selector,
)
from detector.engine.globals import (
    DISTINCTIVE,
    NAMED,
    accepts_any_value,
    global_use,
    name_strength,
    usable_name,
)
from detector.engine.loader import combined_parts, loader_urls
from detector.engine.network import VALUE_LIMIT, NetworkFacts
from detector.engine.page import Page, ParsedPage, parse_page
from detector.engine.patterns import (
    Pattern,
    compile_pattern,
    encode_text,
    parse_pattern,
    required_literals,
)
from detector.engine.prefilter import (
    HyperscanPrefilter,
    LiteralPrefilter,
    Prefilter,
    hs_view,
    hyperscan_available,
)
from detector.engine.signatures import (
    BROWSER_KINDS,
    NETWORK_KINDS,
    Library,
    Signature,
    as_list,
    load_signatures,
    relation_name,
    resolve_directories,
)
from detector.engine.verdict import SiteDetection
from detector.errors import SignatureError

#: Kinds matched against one text each, in the reference engine's order.
TEXT_KINDS = ("css", "html", "scripts", "text", "url")
KEYED_STATIC = ("cookies", "headers", "meta")
#: The reference engine's evaluation order of kinds (dom comes after all of them).
KIND_RANK = {k: i for i, k in enumerate(
    ("certIssuer", "cookies", "css", "dns", "headers", "html", "meta", "probe", "robots",
     "scriptSrc", "scripts", "text", "url", "xhr", "js"))}
#: How evidence names its source.
SOURCE_NAMES = {
    "cookies": "cookie", "headers": "header", "meta": "meta", "scriptSrc": "script_src",
    "scripts": "script", "html": "html", "text": "text", "css": "css", "url": "url", "dom": "dom",
    "scriptLoader": "script_loader", "dns": "dns", "certIssuer": "cert_issuer", "js": "js", "xhr": "xhr",
    "cdnPath": "cdn_path", "jsGlobal": "inline_js", "assetPath": "asset_path",
}
#: Network kinds the engine matches on :class:`~detector.engine.network.NetworkFacts`.
FACT_KINDS = ("dns", "certIssuer")
EXCERPT = 120
#: Engine modes: "detector" (the default: this project's rules of evidence, see
#: :mod:`detector.engine.evidence`) and "wappalyzer" (the reference engine's results, as the
#: conformance bench measures them).
MODES = ("detector", "wappalyzer")
KEYED_PREFILTER_MIN = 6
#: Categories of infrastructure a site runs on (see Engine._third_party_infrastructure).
INFRASTRUCTURE = frozenset({"CDN", "PaaS", "IaaS", "Hosting", "Reverse proxies", "Load balancers"})
#: Categories of code that runs in the browser (see Engine._source_language).
CLIENT_SIDE = frozenset({"JavaScript libraries", "JavaScript frameworks", "UI frameworks", "JavaScript graphics",
                         "Widgets", "Font scripts", "Video players", "Photo galleries", "Rich text editors", "Maps"})
#: Kinds of hits that come from URLs a page references, not from the site's own responses.
URL_KINDS = frozenset({"scriptSrc", "scriptLoader", "cdnPath", "html", "dom", "jsGlobal", "assetPath"})
#: Values longer than protocols allow are matched on their first characters only, which
#: bounds the work of the few patterns that need Python's backtracking ``re``: request
#: lines (script URLs, the page URL) and cookies beyond 8 KB, header and meta values beyond
#: 64 KB are refused by common servers and browsers anyway.
VALUE_LIMITS = {"scriptSrc": 8192, "url": 8192, "cookies": 8192, "headers": 65536, "meta": 65536}


def cap_value(kind: str, value: str) -> str:
    """The part of a value the engine matches for ``kind`` (see VALUE_LIMITS).

    >>> len(cap_value("scriptSrc", "x" * 10000)), len(cap_value("html", "x" * 10000))
    (8192, 10000)
    """
    limit = VALUE_LIMITS.get(kind)
    return value[:limit] if limit is not None and len(value) > limit else value


def combine_confidence(scores: Iterable[int]) -> int:
    """Combine evidence scores for one technology, capped at 100.

    >>> combine_confidence([50, 75])
    100
    """
    return min(100, sum(scores))


def js_parse_int(text: str) -> int:
    """JavaScript's ``parseInt(text, 10) || 0``.

    >>> js_parse_int("12.3"), js_parse_int("v2"), js_parse_int(" -4x")
    (12, 0, -4)
    """
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def better_version(current: str, candidate: str) -> str:
    """The reference engine's version choice: the longer one, if plausible.

    >>> better_version("1.2", "1.2.3"), better_version("1.2", "20230101123")
    ('1.2.3', '1.2')
    """
    if len(candidate) > len(current) and len(candidate) <= 15 and js_parse_int(candidate) < 10000:
        return candidate
    return current


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a technology was detected: where, which pattern, what it matched."""

    source: str
    pattern: str
    match: str
    url: str = ""
    key: str = ""
    version: str = ""
    confidence: int = 100
    #: Why this evidence is weak ("resource hint", "snippet comment"), or "" (default mode only).
    weak: str = ""
    #: The whole value the pattern matched in, where it says more than the match (a DNS record).
    value: str = ""
    #: "static" (the fetched HTML and headers) or "rendered" (what a browser saw: see
    #: detector.engine.browser).  JSON output says ``"tier": "rendered"``; no tier is static.
    tier: str = "static"

    def describe(self) -> str:
        """One line for people: ``header server: "nginx/1.2" ~ /nginx(?:/([\\d.]+))?/``."""
        where = f"{self.source} {self.key}".strip()
        if self.source == "implied":
            return f"implied by {self.match}"
        if not self.pattern:
            return f"{where} present" + (f': "{self.match}"' if self.match else "")
        return f'{where}: "{self.match}" matched /{self.pattern}/'

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        out: dict[str, Any] = {"source": self.source, "pattern": self.pattern, "match": self.match}
        if self.key:
            out["key"] = self.key
        if self.url:
            out["url"] = self.url
        if self.version:
            out["version"] = self.version
        out["confidence"] = self.confidence
        if self.weak:
            out["weak"] = self.weak
        if self.value:
            out["value"] = self.value
        if self.tier != "static":
            out["tier"] = self.tier
        return out


@dataclass(frozen=True, slots=True)
class Detection:
    """A technology found on a page, with version, confidence, categories and evidence."""

    technology: str
    version: str | None
    confidence: int
    categories: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    implied_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "name": self.technology,
            "version": self.version,
            "confidence": self.confidence,
            "categories": list(self.categories),
            "evidence": [e.to_dict() for e in self.evidence],
            **({"implied_by": list(self.implied_by)} if self.implied_by else {}),
        }


@dataclass(slots=True)
class _Tech:
    name: str
    categories: tuple[str, ...]
    category_ids: tuple[int, ...]
    implies: list[tuple[str, int, str]]
    excludes: list[str]
    requires: list[str]
    requires_category: list[int]


@dataclass(slots=True)
class _Rule:
    """One pattern bound to a technology, a kind and (for keyed kinds) a name."""

    tech: int
    kind: str
    key: str
    order: tuple[int, ...]
    pattern: Pattern

    @property
    def hyperscan(self) -> str | None:
        return self.pattern.hyperscan

    @property
    def literals(self) -> frozenset[str] | None:
        return required_literals(self.pattern.python)


@dataclass(slots=True)
class _DomRule:
    tech: int
    selector: str
    order: int
    exists: Pattern | None
    text: Pattern | None
    attributes: list[tuple[str, Pattern]]
    gate: frozenset[str] | None
    also: frozenset[bytes] | None = None
    #: The href*= values of the branches that select anchors by a substring (default mode).
    anchors: tuple[tuple[str, ...], ...] | None = None


@dataclass(slots=True)
class _PropertyRule:
    """A ``dom`` rule's ``properties`` entry: a DOM property the rendered tier reads."""

    tech: int
    selector: str
    order: int
    name: str
    pattern: Pattern


@dataclass(slots=True)
class _GlobalRule:
    """A ``js`` rule's global, looked for in inline code (default mode, see detector.engine.globals)."""

    tech: int
    name: str
    strength: int
    confidence: int
    order: int
    #: For the root of a rule's dotted path: the members of which code must name one.
    members: tuple[str, ...] = ()
    hyperscan: str | None = None
    literals: frozenset[str] | None = None

    def __post_init__(self) -> None:
        # The prefilter looks for the shape that counts for the name's strength, so that
        # everyday words pass only where a snippet defines them.
        name = _hs_escape(self.name)
        left = "(?:^|[^A-Za-z0-9_$])"
        if self.strength == DISTINCTIVE:
            self.hyperscan = f"{left}{name}(?:[^A-Za-z0-9_$]|$)"
        elif self.strength == NAMED:
            self.hyperscan = rf"{left}{name}\s{{0,8}}\.[A-Za-z_$]"
        else:
            self.hyperscan = (rf"{left}{name}\s{{0,8}}=\s{{0,8}}(?:(?:window|self|globalThis|top|parent)\.)?"
                              rf"{name}\s{{0,8}}\|\|")
        self.literals = frozenset({self.name.lower()})


@dataclass(slots=True)
class _Gate:
    """A DOM selector's literal gate, in the shape prefilters take."""

    literals: frozenset[str] | None
    hyperscan: str | None = None

    def __post_init__(self) -> None:
        if self.literals:
            self.hyperscan = "|".join(_hs_escape(lit) for lit in sorted(self.literals))


def _hs_escape(text: str) -> str:
    return "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in text)


@dataclass(slots=True)
class _Hit:
    order: tuple[Any, ...]
    tech: int
    kind: str
    key: str
    pattern: str
    match: str
    version: str
    confidence: int
    url: str
    #: False for a pattern's match on a site's other pages: it gives version and evidence,
    #: but the pattern's confidence counts once (see detector.engine.site).
    counted: bool = True
    #: Why the hit is weak evidence (default mode): it counts only beside a strong hit.
    weak: str = ""
    #: The whole value matched, where it says more than the match (a DNS record).
    value: str = ""
    #: The page's tier: "static" or "rendered".
    tier: str = "static"


@dataclass(slots=True)
class _Resolved:
    tech: int
    confidence: int
    version: str
    hits: list[_Hit]
    implied_by: list[str] = field(default_factory=list)
    #: The page an implied technology's implier was found on.
    page: str = ""


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What the engine loaded: technologies, compiled patterns, and rules it cannot run."""

    technologies: int
    patterns: int
    dom_selectors: int
    browser_rules: int
    network_rules: int
    python_fallback_patterns: int
    accelerator: str


class Engine:
    """Compiled signature library; ``detect(page)`` returns detections with evidence."""

    def __init__(self, library: Library, *, accelerate: bool = True, mode: str = "detector") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown engine mode {mode!r}; use one of {', '.join(MODES)}")
        self.library = library
        self.accelerate = accelerate
        self.mode = mode
        self.use_hyperscan = accelerate and hyperscan_available()
        self._techs: list[_Tech] = []
        self._index: dict[str, int] = {}
        self._text_rules: dict[str, list[_Rule]] = {k: [] for k in TEXT_KINDS}
        self._script_rules: list[_Rule] = []
        self._keyed: dict[str, dict[str, list[_Rule]]] = {k: {} for k in KEYED_STATIC}
        self._dom: list[_DomRule] = []
        #: dns rules by record type (upper case) and certIssuer rules, matched on NetworkFacts.
        self._dns_rules: dict[str, list[_Rule]] = {}
        self._cert_rules: list[_Rule] = []
        #: Rendered tier: js property paths -> rules, xhr host rules, dom property rules.
        self._js: dict[str, list[_Rule]] = {}
        self._xhr: list[_Rule] = []
        self._dom_properties: list[_PropertyRule] = []
        #: Default mode: text rules of one short word, matched by these instead (by rule index).
        self._short_words: dict[int, ShortWord] = {}
        self._browser_rules = 0
        self._network_rules = 0
        #: Default mode: package-CDN name -> technology index (see detector.engine.cdn).
        self._cdn_index: dict[str, int] = {}
        #: Default mode: WordPress plugin/theme folder -> technology index (see detector.engine.assets).
        self._asset_index: dict[tuple[str, str], int] = {}
        #: Default mode: js-rule globals looked for in inline code.
        self._globals: list[_GlobalRule] = []
        self._compile(library)
        # Globals are names: case matters, and they stand between non-identifier characters.
        self._prefilters_globals: Prefilter = (
            HyperscanPrefilter(self._globals, caseless=False) if self.use_hyperscan else LiteralPrefilter(self._globals))
        self._prefilters: dict[str, Prefilter] = {}
        #: The DOM rules' second literals (``also``) that the HTML scan finds too, by literal:
        #: its index among the HTML prefilter's entries (see _match_dom).
        self._also_ids: dict[bytes, int] = {}
        for kind in TEXT_KINDS:
            entries: list[Any] = list(self._text_rules[kind])
            if kind == "html":
                entries += [_Gate(d.gate) for d in self._dom]
                if self.mode == "detector":  # package-CDN hosts in the HTML (stylesheet links)
                    entries += [_Gate(frozenset({host})) for host in CDN_HOSTS]
                self._cdn_gates_end = len(entries) - len(self._text_rules[kind])
                for lit in sorted({lit for d in self._dom for lit in d.also or ()}):
                    # One scan finds them all; a literal the caseless scan cannot stand for
                    # (upper case, beyond ASCII) stays a substring test on the lower-cased HTML.
                    if lit.isascii() and lit == lit.lower():
                        self._also_ids[lit] = len(entries) - len(self._text_rules[kind])
                        entries.append(_Gate(frozenset({lit.decode("ascii")})))
            self._prefilters[kind] = self._make_prefilter(entries)
        self._prefilters["scriptSrc"] = self._make_prefilter(self._script_rules)
        # Names with many patterns (server, x-powered-by, generator...) get a prefilter too.
        self._keyed_prefilters: dict[tuple[str, str], Prefilter] = {
            (kind, key): self._make_prefilter(rules)
            for kind, by_key in self._keyed.items()
            for key, rules in by_key.items()
            if len(rules) >= KEYED_PREFILTER_MIN
        }

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_directories(
        cls, directories: Sequence[Path | str] | None = None, *, accelerate: bool = True, cache: bool = True,
        mode: str = "detector",
    ) -> Engine:
        """Load the YAML library from directories (later override earlier) and compile it.

        ``mode`` is "detector" (the default) or "wappalyzer" (the reference engine's results, from
        the imported data alone: each directory's ``detector/`` layer of our own rules is left out).
        A compiled engine is cached (see :func:`detector.engine.cache.cache_directory`), keyed by the library's
        content, this code's version and the mode, so later loads take a fraction of a second.
        """
        if mode not in MODES:
            raise ValueError(f"unknown engine mode {mode!r}; use one of {', '.join(MODES)}")
        layers = mode != "wappalyzer"  # the reference runs the imported data alone, without our layer
        if not cache or os.environ.get("DETECTOR_NO_CACHE"):
            return cls(load_signatures(directories, layers=layers), accelerate=accelerate, mode=mode)
        path = cache_path(directories, accelerate and hyperscan_available(), accelerate, mode)
        cached = read_cache(path)
        if isinstance(cached, cls) and getattr(cached, "mode", None) == mode:
            # The key is the content, not the place: say where this library was loaded from.
            here = tuple(str(d) for d in resolve_directories(directories))
            if cached.library.directories != here:
                cached.library = replace(cached.library, directories=here)
            return cached
        engine = cls(load_signatures(directories, layers=layers), accelerate=accelerate, mode=mode)
        write_cache(path, engine)
        return engine

    @classmethod
    def from_directory(cls, directory: Path | str, *, accelerate: bool = True, mode: str = "detector") -> Engine:
        """Load one directory of signatures."""
        return cls.from_directories([directory], accelerate=accelerate, mode=mode)

    def _make_prefilter(self, entries: Sequence[Any]) -> Prefilter:
        if self.use_hyperscan:
            return HyperscanPrefilter(entries)
        return LiteralPrefilter(entries)

    def _compile(self, library: Library) -> None:
        cats_by_name = {c.name.lower(): c for c in library.categories.values()}
        ordered = sorted(library.signatures.values(), key=lambda s: s.name.lower())
        for sig in ordered:
            self._index[sig.name] = len(self._techs)
            cat_ids = tuple(cats_by_name[c.lower()].id for c in sig.categories if c.lower() in cats_by_name)
            implies = []
            for entry in sig.implies:
                spec = _parse_relation(entry)
                implies.append(spec)
            self._techs.append(
                _Tech(
                    name=sig.name,
                    categories=tuple(cats_by_name[c.lower()].name if c.lower() in cats_by_name else c for c in sig.categories),
                    category_ids=cat_ids,
                    implies=implies,
                    excludes=[relation_name(e) for e in sig.excludes],
                    requires=[relation_name(e) for e in sig.requires],
                    requires_category=[cats_by_name[c.lower()].id for c in sig.requires_category if c.lower() in cats_by_name],
                )
            )
        problems: list[str] = []
        for t, sig in enumerate(ordered):
            self._compile_rules(t, sig, problems)
        if problems:
            raise SignatureError(f"{len(problems)} invalid pattern(s):\n" + "\n".join(problems[:50]))
        # Requirements, in the reference engine's order: names in order of first use,
        # category ids ascending.
        self._requires: list[tuple[str, list[int]]] = []
        req_index: dict[str, list[int]] = {}
        cat_req: dict[int, list[int]] = {}
        for t, tech in enumerate(self._techs):
            for name in tech.requires:
                if name not in req_index:
                    req_index[name] = []
                    self._requires.append((name, req_index[name]))
                req_index[name].append(t)
            for cid in tech.requires_category:
                cat_req.setdefault(cid, []).append(t)
        self._category_requires = sorted(cat_req.items())
        if self.mode == "detector":
            names = build_index((s.name, s.categories, str(s.info.get("website") or "")) for s in ordered)
            self._cdn_index = {key: self._index[name] for key, name in names.items()}
            folders = build_asset_index((s.name, s.rules) for s in ordered)
            self._asset_index = {key: self._index[name] for key, name in folders.items()}
            self._compile_globals(ordered)
        self._main = frozenset(t for t, tech in enumerate(self._techs) if not tech.requires and not tech.requires_category)

    def _pattern(self, sig: Signature, where: str, text: Any, problems: list[str]) -> Pattern | None:
        try:
            pattern = compile_pattern(text, accelerate=self.accelerate)
        except SignatureError as exc:
            problems.append(f'{sig.path}: "{sig.name}" {where}: {exc}')
            return None
        pattern.origin = f'{sig.path}: "{sig.name}" {where}'
        return pattern

    def _compile_rules(self, t: int, sig: Signature, problems: list[str]) -> None:
        for kind, value in sig.rules.items():
            if kind in BROWSER_KINDS:
                self._browser_rules += _count(value)
                self._compile_browser(t, sig, kind, value, problems)
                continue
            rank = KIND_RANK.get(kind, 99)
            if kind in FACT_KINDS:
                self._compile_facts(t, sig, kind, rank, value, problems)
                continue
            if kind in NETWORK_KINDS:
                self._network_rules += _count(value)
                continue
            if kind in TEXT_KINDS or kind == "scriptSrc":
                for i, text in enumerate(as_list(value)):
                    if self.mode == "detector":
                        text = _refined(sig.name, kind, text)
                    p = self._pattern(sig, f"{kind}[{i}]", text, problems)
                    if p is not None:
                        rule = _Rule(t, kind, "", (rank, 0, i), p)
                        if kind == "text" and self.mode == "detector":
                            word = short_word_regex(p.spec.regex)
                            if word is not None:
                                self._short_words[len(self._text_rules[kind])] = word
                        (self._script_rules if kind == "scriptSrc" else self._text_rules[kind]).append(rule)
            elif kind in KEYED_STATIC:
                for k, (key, texts) in enumerate(value.items()):
                    for i, text in enumerate(as_list(texts)):
                        p = self._pattern(sig, f"{kind}[{key!r}]", text, problems)
                        if p is not None:
                            lk = str(key).lower()
                            self._keyed[kind].setdefault(lk, []).append(_Rule(t, kind, lk, (rank, k, i), p))
            elif kind == "dom":
                self._compile_dom(t, sig, value, problems)

    def _compile_facts(self, t: int, sig: Signature, kind: str, rank: int, value: Any, problems: list[str]) -> None:
        """dns rules by record type, certIssuer rules in a list (see :meth:`_fact_hits`)."""
        if kind == "certIssuer":
            for i, text in enumerate(as_list(value)):
                p = self._pattern(sig, f"certIssuer[{i}]", text, problems)
                if p is not None:
                    self._cert_rules.append(_Rule(t, kind, "", (rank, 0, i), p))
            return
        for k, (key, texts) in enumerate(value.items()):
            rtype = str(key).upper()
            for i, text in enumerate(as_list(texts)):
                p = self._pattern(sig, f"dns[{key!r}]", text, problems)
                if p is not None:
                    self._dns_rules.setdefault(rtype, []).append(_Rule(t, kind, rtype, (rank, k, i), p))

    def _compile_globals(self, ordered: Sequence[Signature]) -> None:
        """The globals of ``js`` rules that accept any value, and the roots of dotted ones
        (``googletag`` of ``googletag.pubads``) that one technology owns or is named after."""
        roots: dict[str, set[int]] = {}
        for t, sig in enumerate(ordered):
            for key in (sig.rules.get("js") or {}):
                roots.setdefault(str(key).split(".", 1)[0], set()).add(t)
        for t, sig in enumerate(ordered):
            tech_key = package_key(sig.name)
            chosen: dict[str, int] = {}
            members: dict[str, set[str]] = {}
            direct: set[str] = set()
            for key, texts in (sig.rules.get("js") or {}).items():
                name = str(key).removeprefix("window.")
                if not usable_name(name):
                    continue
                for text in as_list(texts):
                    spec = parse_pattern(text)
                    if accepts_any_value(spec.regex):
                        chosen[name] = max(chosen.get(name, 0), spec.confidence)
                        direct.add(name)
                root, _, rest = name.partition(".")
                if rest and usable_name(root) and root not in direct and (
                        roots.get(root) == {t} or package_key(root) == tech_key):
                    chosen[root] = 100
                    # The rule names a member (google_tag_params.ecomm_pagetype): the root
                    # counts where code names one of the members too, unless the root is the
                    # technology's own name.
                    if package_key(root) != tech_key:
                        members.setdefault(root, set()).add(rest.split(".", 1)[0])
            for n, (name, confidence) in enumerate(sorted(chosen.items())):
                needs = () if name in direct else tuple(sorted(members.get(name, ())))
                self._globals.append(_GlobalRule(t, name, name_strength(name, tech_key), confidence, n, needs))

    def _compile_dom(self, t: int, sig: Signature, value: Any, problems: list[str]) -> None:
        spec: Mapping[str, Any]
        if isinstance(value, (str, list)):
            spec = {sel: {"exists": ""} for sel in as_list(value)}
        else:
            spec = value
        for n, (selector, rule) in enumerate(spec.items()):
            exists = text = None
            attrs: list[tuple[str, Pattern]] = []
            if "exists" in rule:
                exists = self._pattern(sig, f"dom[{selector!r}].exists", rule["exists"] or "", problems)
            if "text" in rule:
                text = self._pattern(sig, f"dom[{selector!r}].text", rule["text"] or "", problems)
            for name, pat in (rule.get("attributes") or {}).items():
                p = self._pattern(sig, f"dom[{selector!r}].attributes.{name}", pat, problems)
                if p is not None:
                    attrs.append((str(name).lower(), p))
            if "properties" in rule:
                self._browser_rules += len(rule["properties"] or {})
                for name, pat in (rule["properties"] or {}).items():
                    p = self._pattern(sig, f"dom[{selector!r}].properties.{name}", pat or "", problems)
                    if p is not None:
                        self._dom_properties.append(_PropertyRule(t, str(selector), n, str(name), p))
            if exists is None and text is None and not attrs:
                continue
            gate = selector_literals(str(selector))
            also: frozenset[str] | None = None
            if exists is None:
                # Only a text or attribute match can make a hit: one of their literals must
                # occur too.  The more selective gate goes to the prefilter, the other is
                # checked in Python for the few rules that pass.
                pgate = _patterns_gate(text, attrs)
                if _gate_score(pgate) > _gate_score(gate):
                    gate, also = pgate, gate
                else:
                    also = pgate
            also_bytes = frozenset(x.encode("utf-8") for x in also) if also else None
            anchors = anchor_substrings(split_selector(str(selector))) if self.mode == "detector" else None
            self._dom.append(_DomRule(t, str(selector), n, exists, text, attrs, gate, also_bytes, anchors))

    def _compile_browser(self, t: int, sig: Signature, kind: str, value: Any, problems: list[str]) -> None:
        """The rendered tier's rules: ``js`` paths (case-sensitive, as JavaScript names are), ``xhr`` hosts."""
        rank = KIND_RANK[kind]
        if kind == "js" and isinstance(value, Mapping):
            for k, (chain, texts) in enumerate(value.items()):
                for i, text in enumerate(as_list(texts) or [""]):
                    p = self._pattern(sig, f"js[{chain!r}]", text if text is not None else "", problems)
                    if p is not None:
                        self._js.setdefault(str(chain), []).append(_Rule(t, "js", str(chain), (rank, k, i), p))
        elif kind == "xhr":
            for i, text in enumerate(as_list(value)):
                p = self._pattern(sig, f"xhr[{i}]", text, problems)
                if p is not None:
                    self._xhr.append(_Rule(t, "xhr", "", (rank, 0, i), p))

    # ------------------------------------------------------------------ introspection
    @property
    def technologies(self) -> list[str]:
        """Names of every technology the engine knows."""
        return [t.name for t in self._techs]

    def categories_of(self, name: str) -> tuple[str, ...]:
        """Category names of a technology."""
        return self._techs[self._index[name]].categories

    def iter_patterns(self) -> Iterator[tuple[str, str, Pattern]]:
        """Every compiled pattern with its technology and kind (for audits and tests)."""
        for kind, rules in list(self._text_rules.items()) + [("scriptSrc", self._script_rules)]:
            for r in rules:
                yield self._techs[r.tech].name, kind, r.pattern
        for kind, by_key in self._keyed.items():
            for rules in by_key.values():
                for r in rules:
                    yield self._techs[r.tech].name, kind, r.pattern
        for d in self._dom:
            for p in [d.exists, d.text] + [a[1] for a in d.attributes]:
                if p is not None:
                    yield self._techs[d.tech].name, "dom", p

    def stats(self) -> EngineStats:
        """Counts of what was loaded and compiled."""
        rules = [r for rs in self._text_rules.values() for r in rs] + self._script_rules
        rules += [r for by in self._keyed.values() for rs in by.values() for r in rs]
        return EngineStats(
            technologies=len(self._techs),
            patterns=len(rules),
            dom_selectors=len(self._dom),
            browser_rules=self._browser_rules,
            network_rules=self._network_rules,
            python_fallback_patterns=sum(1 for r in rules if r.pattern.uses_python),
            accelerator=("hyperscan+re2" if self.use_hyperscan else "literal+re2" if self.accelerate else "python"),
        )

    def switched_off(self) -> list[str]:
        """Patterns switched off since the last call, by origin (file, technology, rule).

        A pattern on Python's ``re`` that runs past its time budget on a page (see
        :mod:`detector.engine.budget`) matches nothing for the rest of the process.
        """
        return [p.origin or repr(p) for p in budget.take_switched_off()]

    # ------------------------------------------------------------------ detection
    def detect(self, page: Page | ParsedPage) -> list[Detection]:
        """Every technology the page shows, with version, confidence and evidence.

        The same resolution as :meth:`detect_site` of one page (which returns site verdicts).
        """
        hits, dom_hits = self._page_hits(page)
        return [self._detection(r) for r in self._resolve_with_requirements(hits, dom_hits)]

    def detect_site(self, pages: Iterable[Page | ParsedPage], network: NetworkFacts | None = None) -> list[SiteDetection]:
        """One verdict for a site's pages and its DNS/TLS facts, resolved at once (see
        :mod:`detector.engine.site`)."""
        from detector.engine.site import detect_site

        return detect_site(self, pages, network)

    def _fact_hits(self, facts: NetworkFacts) -> dict[int, list[_Hit]]:
        """Every dns and certIssuer rule match on a site's records and certificate issuer.

        A DNS hit's ``url`` is the name that was queried (``_dmarc.acme.test``); its ``value``
        the whole record, so the evidence shows what DNS said, not only the matched part.
        """
        hits: dict[int, list[_Hit]] = {}
        acc = self.accelerate
        found: list[tuple[_Rule, str, tuple[Any, ...], str]] = []
        for rtype, values in facts.dns.items():
            name = facts.queried_name(rtype)
            for rule in self._dns_rules.get(rtype.upper(), ()):
                found += [(rule, value, rule.order + (v,), name) for v, value in enumerate(values)]
        if facts.cert_issuer:
            found += [(rule, facts.cert_issuer, rule.order, "") for rule in self._cert_rules]
        for rule, value, order, name in found:
            value = value[:VALUE_LIMIT]
            m = rule.pattern.search(value, acc)
            if m is not None:
                hits.setdefault(rule.tech, []).append(
                    _Hit(order, rule.tech, rule.kind, rule.key, rule.pattern.regex, _excerpt(m.text, value),
                         rule.pattern.version_for(m), rule.pattern.spec.confidence, name, value=value))
        for tech_hits in hits.values():
            tech_hits.sort(key=lambda h: h.order)
        return hits

    def _page_hits(self, page: Page | ParsedPage) -> tuple[dict[int, list[_Hit]], dict[int, list[_Hit]]]:
        """Every pattern match on one page, per technology, in evaluation order (DOM apart)."""
        parsed = page if isinstance(page, ParsedPage) else parse_page(page)
        budget.new_page()
        hits: dict[int, list[_Hit]] = {}
        dom_hits: dict[int, list[_Hit]] = {}
        cdn_hosts = self._match_text_kinds(parsed, hits, dom_hits)
        self._match_scripts(parsed, hits)
        if self.mode == "detector":
            loaded = parsed.deferred_src + loader_urls(parsed.script_code, parsed.url)
            self._match_loader(parsed, loaded, hits)
            self._match_cdn(parsed, loaded, hits, cdn_hosts)
            self._match_globals(parsed, hits)
            self._match_assets(parsed, hits)
        self._match_keyed(parsed, hits)
        source = parsed.page
        if source.js or source.xhr or source.dom_properties:
            self._match_browser(source, parsed.url, hits, dom_hits)
        for tech_hits in hits.values():
            tech_hits.sort(key=lambda h: h.order)
        for tech_hits in dom_hits.values():
            tech_hits.sort(key=lambda h: h.order)
        if source.tier != "static":
            for group in (hits, dom_hits):
                for tech_hits in group.values():
                    for h in tech_hits:
                        h.tier = source.tier
        return hits, dom_hits

    def _match_browser(self, page: Page, url: str, hits: dict[int, list[_Hit]], dom_hits: dict[int, list[_Hit]]) -> None:
        """What a browser saw: js path values, XHR/fetch hosts, dom properties (rendered tier)."""
        acc = self.accelerate
        for chain, value in page.js.items():
            for rule in self._js.get(chain, ()):
                self._add(hits, rule, cap_value("headers", str(value)), rule.order, url, acc)
        for h, host in enumerate(page.xhr):
            host = cap_value("url", host)
            for rule in self._xhr:
                self._add(hits, rule, host, rule.order + (h,), url, acc)
        if page.dom_properties:
            for prop in self._dom_properties:
                found = page.dom_properties.get(prop.selector, {})
                if prop.name not in found:
                    continue
                value = cap_value("headers", str(found[prop.name]))
                m = prop.pattern.search(value, acc)
                if m is not None:
                    dom_hits.setdefault(prop.tech, []).append(
                        _Hit((prop.order, -2, 0), prop.tech, "dom", f"{prop.selector} .{prop.name}",
                             prop.pattern.regex, _excerpt(m.text, value), prop.pattern.version_for(m),
                             prop.pattern.spec.confidence, url))

    def _add(self, hits: dict[int, list[_Hit]], rule: _Rule, value: str, order: tuple[Any, ...], url: str,
             accelerated: bool, encoded: bytes | None = None) -> None:
        """Match one rule on a value already cut to its kind's limit (see cap_value)."""
        m = rule.pattern.search(value, accelerated, encoded)
        if m is None:
            return
        if rule.kind == "scriptSrc" and self.mode == "detector" and script_name_weakness(
                rule.pattern.regex, value, m.text):
            return
        weak = ""
        if self.mode == "detector":
            if rule.kind == "html":
                weak = html_weakness(value, m.text)
            elif rule.kind == "scripts":
                weak = script_weakness(value, m.text)
            elif rule.kind == "headers" and rule.key in POLICY_HEADERS:
                weak = WEAK_POLICY
            elif rule.kind == "scriptSrc" and foreign_bucket(value, m.text, url):
                weak = WEAK_BUCKET
        hits.setdefault(rule.tech, []).append(
            _Hit(order, rule.tech, rule.kind, rule.key, rule.pattern.regex, _excerpt(m.text, value),
                 rule.pattern.version_for(m), rule.pattern.spec.confidence, url, weak=weak)
        )

    def _add_word(self, hits: dict[int, list[_Hit]], rule: _Rule, word: ShortWord, value: str, url: str) -> None:
        """A short-word text rule, matched on word boundaries (default mode)."""
        m = word.search(value)
        if m is not None:
            hits.setdefault(rule.tech, []).append(
                _Hit(rule.order, rule.tech, rule.kind, rule.key, rule.pattern.regex, m.group(0), "",
                     rule.pattern.spec.confidence, url))

    def _match_text_kinds(self, parsed: ParsedPage, hits: dict[int, list[_Hit]], dom_hits: dict[int, list[_Hit]]
                          ) -> tuple[str, ...]:
        """Match the text kinds (and the DOM rules whose gates pass); return the package-CDN
        hosts that occur in the HTML (default mode)."""
        acc = self.accelerate
        cdn_hosts: tuple[str, ...] = ()
        values = {"url": parsed.url, "html": parsed.html, "text": parsed.text, "css": parsed.css, "scripts": parsed.scripts}
        for kind in TEXT_KINDS:
            value = values[kind]
            if not value:
                continue
            rules = self._text_rules[kind]
            n = len(rules)
            gates: list[int] = []
            value = cap_value(kind, value)
            encoded = view = None
            if acc:
                # One UTF-8 encoding serves RE2 and Hyperscan; lone surrogates (broken
                # input) pass through for RE2 and become U+FFFD for Hyperscan.
                try:
                    encoded = view = value.encode("utf-8")
                except UnicodeEncodeError:
                    encoded, view = encode_text(value), hs_view(value)
            if kind == "html":
                html_view = view
            words = self._short_words if kind == "text" else {}
            for i in self._prefilters[kind].candidates(value, view):
                if i < n:
                    rule = rules[i]
                    word = words.get(i)
                    if word is not None:
                        self._add_word(hits, rule, word, value, parsed.url)
                    else:
                        self._add(hits, rule, value, rule.order, parsed.url, acc, encoded)
                else:
                    gates.append(i - n)
            if kind == "html":
                dom_gates, cdn_end = len(self._dom), self._cdn_gates_end
                cdn_hosts = tuple(CDN_HOSTS[g - dom_gates] for g in sorted(gates) if dom_gates <= g < cdn_end)
                if parsed.dom is not None:
                    found = {g for g in gates if g >= cdn_end}
                    self._match_dom(parsed, sorted(g for g in gates if g < dom_gates), dom_hits,
                                    _AlsoLiterals(self._also_ids, found, html_view, value))
        return cdn_hosts

    def _match_scripts(self, parsed: ParsedPage, hits: dict[int, list[_Hit]]) -> None:
        prefilter = self._prefilters["scriptSrc"]
        rules = self._script_rules
        rank = KIND_RANK["scriptSrc"]
        srcs = parsed.script_src
        if self.mode == "detector":
            srcs = srcs + [part for src in srcs for part in combined_parts(src)]
        for u, src in enumerate(srcs):
            src = cap_value("scriptSrc", src)  # once per URL, not per candidate pattern
            for i in prefilter.candidates(src):
                rule = rules[i]
                self._add(hits, rule, src, (rank, 0, u, rule.order[2]), parsed.url, self.accelerate)

    def _match_globals(self, parsed: ParsedPage, hits: dict[int, list[_Hit]]) -> None:
        """Globals of ``js`` rules that inline code defines or uses (source ``inline_js``)."""
        code = parsed.script_code
        if not code or not self._globals:
            return
        for i in sorted(self._prefilters_globals.candidates(code)):
            rule = self._globals[i]
            if rule.members and not any(member in code for member in rule.members):
                continue
            found = global_use(code, rule.name, rule.strength)
            if found:
                hits.setdefault(rule.tech, []).append(
                    _Hit((99, 0, rule.order), rule.tech, "jsGlobal", rule.name, "", _excerpt(found, found), "",
                         loader_confidence(rule.confidence), parsed.url))

    def _match_cdn(self, parsed: ParsedPage, loaded: list[str], hits: dict[int, list[_Hit]],
                   in_html: Sequence[str]) -> None:
        """Technologies and versions that package-CDN paths name (source ``cdn_path``): in
        script URLs and stylesheet links at the rule's full confidence, in URLs that inline
        code builds at the script_loader's."""
        index = self._cdn_index
        if not index:
            return
        rank = KIND_RANK["scriptSrc"]
        strong = [*parsed.script_src, *(stylesheet_urls(parsed.html, hosts=in_html) if in_html else ())]
        found = [(t, v, url, 100) for t, v, url in match_cdn(strong, index)]
        seen = set(strong)
        found += [(t, v, url, loader_confidence(100))
                  for t, v, url in match_cdn((x for x in loaded if x not in seen), index)]
        for u, (t, version, url, confidence) in enumerate(found):
            hits.setdefault(t, []).append(
                _Hit((rank, 2, u, 0), t, "cdnPath", "", "package CDN path", _excerpt(url, url), version,
                     confidence, parsed.url))

    def _match_assets(self, parsed: ParsedPage, hits: dict[int, list[_Hit]]) -> None:
        """WordPress plugins and themes whose folder the page's URLs name (source ``asset_path``)."""
        index = self._asset_index
        if not index:
            return
        rank = KIND_RANK["scriptSrc"]
        for u, (kind, slug, excerpt) in enumerate(asset_folders(parsed.html)):
            t = index.get((kind, slug))
            if t is not None:
                hits.setdefault(t, []).append(
                    _Hit((rank, 3, u, 0), t, "assetPath", "", f"wp-content/{kind}/{slug}/", excerpt, "", 100,
                         parsed.url))

    def _match_loader(self, parsed: ParsedPage, urls: list[str], hits: dict[int, list[_Hit]]) -> None:
        """The scriptSrc rules on the script URLs inline code builds (source ``script_loader``)."""
        if not urls:
            return
        prefilter = self._prefilters["scriptSrc"]
        rules = self._script_rules
        rank = KIND_RANK["scriptSrc"]
        loaded = set(parsed.script_src)
        acc = self.accelerate
        for u, src in enumerate(urls):
            if src in loaded:
                continue  # the page loads it with a <script src>: that evidence is already there
            src = cap_value("scriptSrc", src)
            for i in prefilter.candidates(src):
                rule = rules[i]
                m = rule.pattern.search(src, acc)
                if m is None or script_name_weakness(rule.pattern.regex, src, m.text):
                    continue
                hits.setdefault(rule.tech, []).append(
                    _Hit((rank, 1, u, rule.order[2]), rule.tech, "scriptLoader", "", rule.pattern.regex,
                         _excerpt(m.text, src), rule.pattern.version_for(m),
                         loader_confidence(rule.pattern.spec.confidence), parsed.url,
                         weak=WEAK_BUCKET if foreign_bucket(src, m.text, parsed.url) else "")
                )

    def _match_keyed(self, parsed: ParsedPage, hits: dict[int, list[_Hit]]) -> None:
        sources: dict[str, Mapping[str, Sequence[str]]] = {
            "headers": parsed.headers,
            "cookies": {k: [v] for k, v in parsed.cookies.items()},
            "meta": parsed.meta,
        }
        acc = self.accelerate
        for kind in KEYED_STATIC:
            by_key = self._keyed[kind]
            for key, values in sources[kind].items():
                rules = by_key.get(key)
                if not rules:
                    continue
                prefilter = self._keyed_prefilters.get((kind, key))
                for v, value in enumerate(values):
                    value = cap_value(kind, value)
                    chosen = rules if prefilter is None else [rules[i] for i in prefilter.candidates(value)]
                    for rule in chosen:
                        self._add(hits, rule, value, rule.order + (v,), parsed.url, acc)

    def _match_dom(self, parsed: ParsedPage, gates: list[int], dom_hits: dict[int, list[_Hit]],
                   also: _AlsoLiterals) -> None:
        """Evaluate the DOM rules whose gates passed; ``also`` says which second literals the HTML has."""
        tree = parsed.dom
        assert tree is not None
        cache: dict[str, list[Any]] = {}
        filtered: dict[str, tuple[list[Any], list[bool]]] = {}
        acc = self.accelerate
        detector = self.mode == "detector"
        for g in gates:
            rule = self._dom[g]
            if rule.also and not also.any_of(rule.also):
                continue
            nodes = cache.get(rule.selector)
            if nodes is None:
                try:
                    nodes = tree.css(rule.selector)
                except Exception:  # noqa: BLE001 - a selector lexbor cannot parse matches nothing
                    nodes = []
                cache[rule.selector] = nodes
            hints: list[bool] = []
            if detector and nodes:
                # The default mode's node rules depend on the selector alone (its anchors come
                # from it): filtered once per selector.
                kept = filtered.get(rule.selector)
                if kept is None:
                    kept = filtered[rule.selector] = _counted_nodes(nodes, rule.anchors, parsed.url)
                nodes, hints = kept
            if not nodes:
                continue
            out = dom_hits.setdefault(rule.tech, [])
            base = (rule.order,)
            if rule.exists is not None:
                before = len(out)
                self._dom_hit(out, rule, rule.exists, "", base + (-1, 0), parsed.url, acc, "exists")
                if hints and all(hints) and len(out) > before:
                    out[-1].weak = WEAK_HINT
            for k, node in enumerate(nodes):
                first = len(out)
                if rule.text is not None:
                    content = (node.text(deep=True, separator="") or "").strip()
                    self._dom_hit(out, rule, rule.text, content, base + (k, 0), parsed.url, acc, "text")
                if rule.attributes:
                    attrs = node.attributes
                    for a, (name, pat) in enumerate(rule.attributes):
                        if name in attrs:
                            value = attrs[name] or ""
                            self._dom_hit(out, rule, pat, value, base + (k, a + 1), parsed.url, acc, f"[{name}]")
                if hints and hints[k]:
                    for h in out[first:]:
                        h.weak = WEAK_HINT
            if not out:
                del dom_hits[rule.tech]

    def _dom_hit(self, out: list[_Hit], rule: _DomRule, pattern: Pattern, value: str, order: tuple[Any, ...],
                 url: str, acc: bool, what: str) -> None:
        m = pattern.search(value, acc)
        if m is None:
            return
        shown = _excerpt(m.text, value) if value else ""
        out.append(_Hit(order, rule.tech, "dom", f"{rule.selector} {what}" if what != "exists" else rule.selector,
                        pattern.regex, shown, pattern.version_for(m), pattern.spec.confidence, url))

    # ------------------------------------------------------------------ resolution
    def _resolve_with_requirements(self, hits: dict[int, list[_Hit]], dom_hits: dict[int, list[_Hit]]) -> list[_Resolved]:
        def batch(techs: Iterable[int]) -> list[_Hit]:
            techs = list(techs)
            seq: list[_Hit] = []
            for t in techs:
                seq.extend(hits.get(t, ()))
            for t in techs:
                seq.extend(dom_hits.get(t, ()))
            return seq

        if not hits and not dom_hits:
            return []
        if self.mode == "detector":
            hits, dom_hits = _drop_weak(hits, dom_hits)
        main = self._main
        seq = batch(sorted(t for t in hits.keys() | dom_hits.keys() if t in main))
        done_names: set[str] = set()
        done_cats: set[int] = set()
        # Until nothing changes: every round adds a requirement met for the first time, and
        # there are finitely many, so this ends (a chain of any length is followed).
        while True:
            resolved = self._resolve(seq)
            names = {self._techs[r.tech].name for r in resolved}
            cats = {c for r in resolved for c in self._techs[r.tech].category_ids}
            added = False
            for name, dependents in self._requires:
                if name in names and name not in done_names:
                    done_names.add(name)
                    seq += batch(dependents)
                    added = True
            for cid, dependents in self._category_requires:
                if cid in cats and cid not in done_cats:
                    done_cats.add(cid)
                    seq += batch(dependents)
                    added = True
            if not added:
                return resolved

    def _resolve(self, seq: list[_Hit]) -> list[_Resolved]:
        by_tech: dict[int, _Resolved] = {}
        for hit in seq:
            r = by_tech.get(hit.tech)
            if r is None:
                r = by_tech[hit.tech] = _Resolved(hit.tech, 0, "", [])
            if hit.counted:
                r.confidence = min(100, r.confidence + hit.confidence)
            r.version = better_version(r.version, hit.version)
            r.hits.append(hit)
        resolved = list(by_tech.values())
        # excludes, then implies, as the reference engine does (a JavaScript forEach over
        # an array it splices: entries that shift into visited positions are skipped).
        i, limit = 0, len(resolved)
        while i < min(limit, len(resolved)):
            for name in self._techs[resolved[i].tech].excludes:
                resolved[:] = [r for r in resolved if self._techs[r.tech].name != name]
            i += 1
        present = {r.tech for r in resolved}
        changed = True
        while changed and resolved:
            changed = False
            for r in resolved[: len(resolved)]:
                for name, confidence, version in self._techs[r.tech].implies:
                    t = self._index.get(name)
                    if t is None or t in present:
                        continue
                    if self.mode == "detector" and (self._third_party_infrastructure(r, t)
                                                    or self._source_language(r, t)):
                        continue
                    page = r.page or (r.hits[0].url if r.hits else "")
                    resolved.append(_Resolved(t, min(r.confidence, confidence), version, [], [self._techs[r.tech].name],
                                              page))
                    present.add(t)
                    changed = True
        return resolved

    def _third_party_infrastructure(self, implier: _Resolved, target: int) -> bool:
        """Whether implying ``target`` would make the site use another party's infrastructure:
        the implier is a CDN seen only in URLs the page loads (cdnjs, a vendor's S3 bucket), and
        the target is infrastructure (a CDN, PaaS, IaaS, hosting).  A page loading files from
        cdnjs does not run on Cloudflare; the site's own responses would say so."""
        if not INFRASTRUCTURE.intersection(self._techs[target].categories):
            return False
        if "CDN" not in self._techs[implier.tech].categories:
            return False
        return bool(implier.hits) and all(h.kind in URL_KINDS for h in implier.hits)

    def _source_language(self, implier: _Resolved, target: int) -> bool:
        """Whether implying ``target`` names only the language a client-side library is written
        in (FullCalendar -> TypeScript): the page runs the library's build, not that language."""
        if "Programming languages" not in self._techs[target].categories:
            return False
        categories = self._techs[implier.tech].categories
        return bool(categories) and all(c in CLIENT_SIDE for c in categories)

    def _detection(self, r: _Resolved) -> Detection:
        tech = self._techs[r.tech]
        evidence = [
            Evidence(SOURCE_NAMES.get(h.kind, h.kind), h.pattern, h.match, h.url, h.key, h.version, h.confidence,
                     weak=h.weak, value=h.value, tier=h.tier)
            for h in r.hits
        ]
        evidence += [Evidence("implied", "", name, confidence=r.confidence) for name in r.implied_by]
        return Detection(tech.name, r.version or None, r.confidence, tech.categories, tuple(evidence), tuple(r.implied_by))


class _AlsoLiterals:
    """Which of the DOM rules' second literals occur in the lower-cased HTML: the ones the
    HTML scan looked for (``ids``) from its result (``found``), any other by a substring test."""

    __slots__ = ("_low", "found", "ids", "value", "view")

    def __init__(self, ids: Mapping[bytes, int], found: set[int], view: bytes | None, value: str) -> None:
        self.ids, self.found, self.view, self.value = ids, found, view, value
        self._low: bytes | None = None

    def any_of(self, literals: Iterable[bytes]) -> bool:
        """Whether one of ``literals`` occurs in the HTML, case folded."""
        for lit in literals:
            i = self.ids.get(lit)
            if i is not None:
                if i in self.found:
                    return True
                continue
            if self._low is None:
                self._low = (self.view.lower() if self.view is not None
                             else self.value.lower().encode("utf-8", "surrogatepass"))
            if lit in self._low:
                return True
        return False


def _counted_nodes(nodes: Sequence[Any], anchors: tuple[tuple[str, ...], ...] | None, page_url: str
                   ) -> tuple[list[Any], list[bool]]:
    """The nodes a DOM rule's selector found that count in the default mode, and for each
    whether it is a resource hint (weak evidence): an anchor found by an href substring counts
    only as :func:`_anchor_counts` says, and a ``<link>`` without an href links nothing (an RSS
    ``<link rel=alternate>`` offers no feed)."""
    kept: list[Any] = []
    hints: list[bool] = []
    for x in nodes:
        tag = x.tag
        if tag == "a":
            if anchors is not None and not _anchor_counts(x.attributes.get("href") or "", anchors, page_url):
                continue
        elif tag == "link":
            attrs = x.attributes
            if not (attrs.get("href") or "").strip():
                continue
            kept.append(x)
            hints.append(is_hint_rel(attrs.get("rel")))
            continue
        kept.append(x)
        hints.append(False)
    return kept, hints


def _anchor_counts(href: str, anchors: tuple[tuple[str, ...], ...], page_url: str) -> bool:
    """An anchor found by an href-substring selector counts: on segment boundaries, not a
    share button (``wa.me/?text=``, ``/sharer``: it passes the page on, it is not the product),
    and for a path rule (``/checkout``), on the page's own site."""
    return (anchor_counts(href, anchors) and not is_share_link(href)
            and not path_rule_elsewhere(href, anchors, page_url))


def _refined(name: str, kind: str, text: Any) -> Any:
    """The pattern the default mode runs for a library rule (see evidence.REFINED_RULES)."""
    if not isinstance(text, str):
        return text
    regex, sep, tags = text.partition("\\;")
    new = REFINED_RULES.get((name, kind, regex))
    return text if new is None else new + sep + tags


def _drop_weak(hits: dict[int, list[_Hit]], dom_hits: dict[int, list[_Hit]]
               ) -> tuple[dict[int, list[_Hit]], dict[int, list[_Hit]]]:
    """Without the technologies whose every hit is weak (a weak hit needs a strong one beside it)."""
    weak_only = [t for t in set(hits) | set(dom_hits)
                 if all(h.weak for h in hits.get(t, ())) and all(h.weak for h in dom_hits.get(t, ()))]
    if not weak_only:
        return hits, dom_hits
    drop = set(weak_only)
    return ({t: h for t, h in hits.items() if t not in drop}, {t: h for t, h in dom_hits.items() if t not in drop})


def _parse_relation(entry: str) -> tuple[str, int, str]:
    parts = str(entry).split("\\;")
    tags = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        confidence = int(tags.get("confidence", "100") or 100)
    except ValueError:
        confidence = 100
    return parts[0], confidence, tags.get("version", "")


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(as_list(v)) or 1 for v in value.values())
    return len(as_list(value))


def _excerpt(matched: str, value: str) -> str:
    if len(matched) > EXCERPT:
        return matched[:EXCERPT] + "..."
    if not matched and value:
        return value[:EXCERPT]
    return matched


# ---------------------------------------------------------------------- DOM gates
_IMPLICIT_TAGS = {"html", "head", "body", "tbody", "*"}
_COMMON_VALUES = {"true", "false", "stylesheet", "text/css", "text/javascript", "images/", "image", "icon", "component"}
_SAFE = re.compile(r"[A-Za-z0-9_./:#-]{3,}")
_ATTR = re.compile(r"""\[\s*([^\s~|^$*=\]]+)\s*(?:([~|^$*]?=)\s*(?:"([^"]*)"|'([^']*)'|([^\s\]]+)))?\s*(?:[iIsS]\s*)?\]""")


def _gate_score(gate: frozenset[str] | None) -> int:
    return -1 if not gate else min(len(x) for x in gate) * 4 - len(gate)


def _better_gate(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return b if _gate_score(b) > _gate_score(a) else a


def _safe_literals(p: Pattern) -> frozenset[str] | None:
    lits = required_literals(p.python)
    if not lits:
        return None
    out = set()
    for lit in lits:
        runs = _SAFE.findall(lit)
        if not runs:
            return None
        out.add(max(runs, key=len))
    return frozenset(out)


def _patterns_gate(text: Pattern | None, attrs: Sequence[tuple[str, Pattern]]) -> frozenset[str] | None:
    """Literals of which one occurs in the raw HTML if the text or an attribute pattern matches.

    An attribute can only match where its name occurs, so the name is a literal too.
    """
    out: set[str] = set()
    parts: list[frozenset[str] | None] = []
    if text is not None:
        parts.append(_safe_literals(text))
    for name, p in attrs:
        name_gate = frozenset({name.lower()}) if len(name) >= 3 and _SAFE.fullmatch(name) else None
        parts.append(_better_gate(name_gate, _safe_literals(p)))
    for part in parts:
        if not part:
            return None
        out |= part
    return frozenset(out) if out else None


def selector_literals(selector: str) -> frozenset[str] | None:
    """Strings of which one must occur in the HTML for ``selector`` to match anything.

    None when no safe literal exists (the selector is then always evaluated).

    >>> sorted(selector_literals("link[href*='wp-content'], meta[name=generator]"))
    ['generator', 'wp-content']
    """
    branches = split_selector(selector)
    out: set[str] = set()
    for branch in branches:
        lit = _branch_literal(branch)
        if lit is None:
            return None
        out.add(lit)
    return frozenset(out) if out else None


def _branch_literal(branch: str) -> str | None:
    # Arguments of pseudo-classes (:not(...), :has(...)) need not occur: drop them.
    text = branch
    while True:
        new = re.sub(r":[\w-]+\([^()]*\)", " ", text)
        if new == text:
            break
        text = new
    # CSS escapes (\\. in a value) stand for the character itself.
    text = re.sub(r"\\(.)", r"\1", text)
    candidates: list[tuple[int, str]] = []
    for m in _ATTR.finditer(text):
        name, op, v1, v2, v3 = m.groups()
        value = v1 if v1 is not None else v2 if v2 is not None else v3
        if op and value:
            runs = _SAFE.findall(value)
            if runs:
                best = max(runs, key=len)
                bonus = 0 if best.lower() in _COMMON_VALUES else 4
                candidates.append((len(best) + bonus, best))
        if len(name) >= 3:
            candidates.append((len(name), name))
    rest = _ATTR.sub(" ", text)
    for m in re.finditer(r"([#.])([A-Za-z0-9_-]+)", rest):
        if len(m.group(2)) >= 3:
            candidates.append((len(m.group(2)) + 2, m.group(2)))
    for m in re.finditer(r"(?:^|[\s>+~])([A-Za-z][A-Za-z0-9-]*)", rest):
        tag = m.group(1).lower()
        if tag not in _IMPLICIT_TAGS:
            candidates.append((len(tag) + 1, "<" + tag))
    if not candidates:
        return None
    return max(candidates)[1].lower()
