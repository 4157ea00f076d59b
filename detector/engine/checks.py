"""``signatures check``: every problem of a library, each with its file and fix."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.engine.match import cap_value
from detector.engine.network import NetworkFacts
from detector.engine.page import Page
from detector.engine.patterns import Pattern, compile_pattern
from detector.engine.signatures import (
    KEYED_KINDS,
    LIST_KINDS,
    Library,
    Signature,
    as_list,
    collect_library,
)
from detector.errors import SignatureError

#: Worst-case inputs are this long, and a pattern must scan each in under this many seconds.
WORST_CASE_SIZE = 1 << 20
WORST_CASE_LIMIT = 0.05

_FIXES = (
    ("unterminated character set", 'escape "[" as "\\["'),
    ("bad character range", 'escape "-" inside [...] as "\\-" or move it last'),
    ("missing ), unterminated subpattern", 'escape "(" as "\\("'),
    ("unbalanced parenthesis", 'escape ")" as "\\)"'),
    ("nothing to repeat", 'escape the quantifier ("\\+", "\\*", "\\?")'),
    ("multiple repeat", "remove the doubled quantifier"),
    ("look-behind requires fixed-width", "make the lookbehind fixed-width or drop it"),
    ("characters; the limit is", "split it into shorter patterns, each for one telling string"),
)


@dataclass(slots=True)
class CheckReport:
    """Problems found (one line each) and counts of what was checked."""

    problems: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def fix_for(message: str) -> str:
    """A suggested fix for a regex error message.

    >>> fix_for("unterminated character set at position 4")
    'escape "[" as "\\\\["'
    """
    for needle, fix in _FIXES:
        if needle in message:
            return fix
    return "rewrite the regex (JavaScript syntax, see signatures/README.md)"


def iter_patterns(sig: Signature) -> Iterator[tuple[str, Any]]:
    """Every (place, pattern text) of a signature, dom included."""
    for kind, value in sig.rules.items():
        if kind in LIST_KINDS:
            for i, text in enumerate(as_list(value)):
                yield f"{kind}[{i}]", text
        elif kind in KEYED_KINDS and isinstance(value, Mapping):
            for key, texts in value.items():
                for text in as_list(texts):
                    yield f"{kind}[{key!r}]", text
        elif kind == "dom" and isinstance(value, Mapping):
            for sel, spec in value.items():
                if not isinstance(spec, Mapping):
                    continue
                for sub in ("exists", "text"):
                    if sub in spec:
                        yield f"dom[{sel!r}].{sub}", spec[sub] or ""
                for attr_kind in ("attributes", "properties"):
                    for name, text in (spec.get(attr_kind) or {}).items():
                        yield f"dom[{sel!r}].{attr_kind}.{name}", text


def dom_selectors(sig: Signature) -> list[str]:
    """The CSS selectors of a signature's ``dom`` rule."""
    dom = sig.rules.get("dom")
    if dom is None:
        return []
    return [str(x) for x in (dom if isinstance(dom, Mapping) else as_list(dom))]


#: Attribute names that are typos of real ones: a selector on them never matches.
ATTRIBUTE_TYPOS = {"scr": "src", "herf": "href", "calss": "class", "contnet": "content", "nmae": "name"}
_ATTR_NAME = re.compile(r"\[\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*(?:[~|^$*]?=|\])")
_SELECTOR_DOC: Any = None


def selector_problem(selector: str) -> str:
    """Why lexbor (the engine's HTML parser) cannot use ``selector``, with the fix; "" when it can.

    >>> selector_problem("a[href*='x'][target='_blank']")
    ''
    >>> print(selector_problem("a[href*='//x.com/][target='_blank']"))
    lexbor cannot parse it: a quoted value is not closed in "a[href*='//x.com/][target='_blank']"; close each '...' before its ]
    >>> selector_problem("iframe[scr*='x']")
    'attribute `scr` is a typo: it never matches; write `src`'
    """
    global _SELECTOR_DOC
    from selectolax.lexbor import LexborHTMLParser

    from detector.engine.evidence import split_selector

    if _SELECTOR_DOC is None:
        _SELECTOR_DOC = LexborHTMLParser("<p></p>")
    try:
        _SELECTOR_DOC.css(selector)
    except Exception:  # noqa: BLE001 - selectolax raises its own error type for any bad selector
        bad = [b for b in split_selector(selector) if not _parses(b)] or [selector]
        return f"lexbor cannot parse it: {_selector_fix(bad[0])}"
    for m in _ATTR_NAME.finditer(selector):
        fix = ATTRIBUTE_TYPOS.get(m.group(1).lower())
        if fix:
            return f"attribute `{m.group(1)}` is a typo: it never matches; write `{fix}`"
    return ""


def _parses(selector: str) -> bool:
    try:
        _SELECTOR_DOC.css(selector)
    except Exception:  # noqa: BLE001 - as above
        return False
    return True


def _selector_fix(branch: str) -> str:
    """What is wrong with one branch of a selector that does not parse, and how to fix it."""
    for q in "'\"":
        if branch.count(q) % 2:
            return f"a quoted value is not closed in {branch!r}; close each {q}...{q} before its ]"
    if branch.count("[") != branch.count("]"):
        return f"unbalanced [ ] in {branch!r}; close each [attribute] with ]"
    if branch.count("(") != branch.count(")"):
        return f"unbalanced ( ) in {branch!r}; close each :pseudo(...) with )"
    pseudo = re.search(r":(contains|eq|first|last|gt|lt|visible|hidden|checkbox|input|text)\b", branch)
    if pseudo:
        return f"`:{pseudo.group(1)}` in {branch!r} is jQuery, not CSS; use a `text` or `attributes` pattern instead"
    if re.search(r"[>+~]\s*$", branch):
        return f"{branch!r} ends with a combinator; add the selector it combines with"
    if re.search(r"\[[^\]=]*=\s*[^\s'\"\]]*[^-\w\s'\"\]][^\]]*\]", branch):
        return f"an unquoted attribute value in {branch!r} holds characters CSS needs quoted; quote it: [name*='value']"
    return f"{branch!r} is not a CSS selector lexbor knows; rewrite it in CSS Selectors Level 4 syntax"


def worst_case_inputs(pattern: Pattern, size: int = WORST_CASE_SIZE) -> list[str]:
    """Inputs built to make a backtracking matcher work hardest on this pattern.

    Generic ones (runs of one character, dotted digits, tag soup) and pattern-specific ones:
    the pattern's literal characters repeated, and each literal run of the pattern followed
    by near-miss filler, repeated to ``size`` characters.
    """
    src = pattern.regex
    literal_runs = [r for r in re.findall(r"(?:\\.|[^\\\[\](){}.*+?^$|])+", src) if len(r) >= 2]
    runs = [re.sub(r"\\(.)", r"\1", r) for r in literal_runs][:3]
    chars = "".join(sorted({c for r in runs for c in r})) or "a"
    bases = ["a", "1.", "<a ", " ", chars]
    for r in runs:
        bases.append(r + chars)
        bases.append(r)
    out = []
    for base in bases:
        out.append((base * (size // max(1, len(base)) + 1))[:size])
    return out


def time_pattern(pattern: Pattern, inputs: Sequence[str], accelerated: bool = True) -> float:
    """The longest CPU time (seconds) the engine's matcher for ``pattern`` takes on one input."""
    pattern.search("", accelerated)  # compile first: only matching is timed
    worst = 0.0
    for text in inputs:
        # CPU time of this thread: what the pattern costs, whatever else the machine runs
        t0 = time.thread_time()
        pattern.search(text, accelerated)
        worst = max(worst, time.thread_time() - t0)
    return worst


def _time_in_child(text: Any, kind: str, conn: Any) -> None:
    pattern = compile_pattern(text)
    conn.send(time_pattern(pattern, [cap_value(kind, x) for x in worst_case_inputs(pattern)]))


def time_pattern_isolated(text: Any, kind: str, timeout: float = 5.0) -> float:
    """Like time_pattern on the worst-case inputs, in a child process killed after ``timeout``.

    A backtracking regex cannot be interrupted inside Python's ``re``; an exponential one
    would hang the check, so it runs apart and counts as ``timeout`` seconds.
    """
    import multiprocessing

    ctx: Any = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_time_in_child, args=(text, kind, child), daemon=True)
    proc.start()
    try:
        if parent.poll(timeout):
            return float(parent.recv())
        return timeout
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()


def check_library(directories: Sequence[Path | str] | None = None, *, timing: bool = True) -> CheckReport:
    """Check schema, regexes, relations, duplicates, backtracking risk and examples."""
    report = CheckReport()
    try:
        library, problems = collect_library(directories)
    except SignatureError as exc:
        report.problems.append(str(exc))
        return report
    report.problems += problems
    stats = report.stats
    stats["technologies"] = len(library.signatures)
    for key in ("patterns", "re2", "python", "browser_rules", "network_rules", "dom_selectors", "examples"):
        stats[key] = 0
    for sig in library.signatures.values():
        for place, text in iter_patterns(sig):
            if place.startswith(("js", "xhr")) or ".properties." in place:
                stats["browser_rules"] += 1
            if place.startswith(("dns", "certIssuer", "robots", "probe")):
                stats["network_rules"] += 1
            try:
                pattern = compile_pattern(text)
            except SignatureError as exc:
                report.problems.append(f'{sig.path}: "{sig.name}" {place}: {exc}; {fix_for(str(exc))}')
                continue
            stats["patterns"] += 1
            if pattern.uses_python:
                stats["python"] += 1
                if timing:
                    worst = time_pattern_isolated(text, place.split("[")[0])
                    if worst > WORST_CASE_LIMIT:  # a busy machine gets a second chance
                        worst = min(worst, time_pattern_isolated(text, place.split("[")[0]))
                    if worst > WORST_CASE_LIMIT:
                        report.problems.append(
                            f'{sig.path}: "{sig.name}" {place}: at risk of catastrophic backtracking '
                            f"({worst * 1000:.0f} ms on a 1 MB worst-case input; RE2 cannot run it because of "
                            "lookaround, back references or non-ASCII text); rewrite it without those"
                        )
            else:
                stats["re2"] += 1
        for selector in dom_selectors(sig):
            stats["dom_selectors"] += 1
            problem = selector_problem(selector)
            if problem:
                report.problems.append(f'{sig.path}: "{sig.name}" dom[{selector!r}]: {problem}')
    if not report.problems:
        report.problems += check_examples(library, stats)
    return report


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """One example run: which technology, which example, whether it held and why not."""

    technology: str
    path: str
    index: int
    expect: str
    mode: str
    ok: bool
    reason: str = ""
    #: What the engine reported for the technology (version, evidence), when it detected it.
    version: str | None = None
    evidence: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """``file: "Name" examples[i]``, the place a problem names."""
        return f'{self.path}: "{self.technology}" examples[{self.index}]'

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"technology": self.technology, "file": self.path, "index": self.index, "expect": self.expect,
                "mode": self.mode, "ok": self.ok, "reason": self.reason, "version": self.version,
                "evidence": list(self.evidence)}


def example_mode(sig: Signature) -> str:
    """The engine mode a signature's examples run in.

    Our own rules (a ``detector/`` layer) are written for the default mode, where inline
    loader snippets count (the ``script_loader`` source): their examples show a vendor's
    install as a crawler sees it, so they run in that mode.  Imported rules test the
    patterns as written, in the "wappalyzer" mode (the default mode's rules of evidence may
    rightly refuse an example that shows a pattern alone, such as a snippet's comment).
    """
    return "detector" if sig.layer else "wappalyzer"


def run_examples(library: Library, names: Sequence[str] | None = None) -> list[ExampleResult]:
    """Run the examples of the named technologies (every one when ``names`` is None).

    A ``match`` page must detect the technology (with the example's ``version`` when it
    gives one); a ``no_match`` page must not.  Each signature's examples run in its
    :func:`example_mode`, on an engine of the whole library (so ``implies``, ``excludes``
    and ``requires`` act as they do in a scan).
    """
    from detector.engine.match import Engine

    wanted = set(names) if names is not None else None
    chosen = [s for s in library.signatures.values() if s.examples and (wanted is None or s.name in wanted)]
    engines: dict[str, Engine] = {}
    results: list[ExampleResult] = []
    for sig in sorted(chosen, key=lambda s: s.name.lower()):
        mode = example_mode(sig)
        engine = engines.get(mode)
        if engine is None:
            engine = engines[mode] = Engine(library, mode=mode)
        for i, example in enumerate(sig.examples):
            results += run_example(engine, sig, i, example)
    return results


def check_examples(library: Library, stats: dict[str, int] | None = None) -> list[str]:
    """Problems of every signature's examples (see :func:`run_examples`), one line each."""
    if stats is not None:
        stats["examples"] = sum(len(s.examples) for s in library.signatures.values())
    return [f"{r.where}: {r.reason}" for r in run_examples(library) if not r.ok]


def example_page(spec: Mapping[str, Any]) -> Page:
    """A Page from an example: url, html, headers {name: value}, cookies, script_urls."""
    return Page.from_http(
        str(spec.get("url") or ""),
        status=spec.get("status"),
        headers=spec.get("headers") or {},
        body=str(spec.get("html") or ""),
        cookies={str(k): str(v) for k, v in (spec.get("cookies") or {}).items()},
        script_urls=[str(u) for u in as_list(spec.get("script_urls"))],
    )


def example_network(spec: Mapping[str, Any]) -> NetworkFacts | None:
    """The DNS records (``dns: {TXT: [...], MX: [...]}``) and certificate issuer
    (``cert_issuer``) of an example, or None when it gives neither.

    >>> example_network({"dns": {"MX": "aspmx.l.google.com"}}).dns
    {'MX': ('aspmx.l.google.com',)}
    """
    if not spec.get("dns") and not spec.get("cert_issuer"):
        return None
    dns = spec.get("dns") or {}
    return NetworkFacts.build(dns if isinstance(dns, Mapping) else {}, str(spec.get("cert_issuer") or ""),
                              str(spec.get("domain") or "example.test"))


def _detect_example(engine: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the engine finds in an example: a page, or a site (page plus DNS/TLS facts)."""
    network = example_network(spec)
    if network is None:
        return {d.technology: d for d in engine.detect(example_page(spec))}
    pages = [example_page(spec)] if spec.get("html") or spec.get("headers") or spec.get("url") else []
    return {d.technology: d for d in engine.detect_site(pages, network)}


def _describe(evidence: Any) -> str:
    """One line for an evidence: a page detection's Evidence, or a site verdict's dict."""
    if isinstance(evidence, Mapping):
        where = f"{evidence.get('source', '')} {evidence.get('key', '')}".strip()
        return f'{where}: "{evidence.get("match", "")}"'
    return str(evidence.describe())


def run_example(engine: Any, sig: Signature, i: int, example: Any) -> list[ExampleResult]:
    """The results of one example (one per expectation it holds) on a compiled engine."""
    def result(expect: str, ok: bool, reason: str = "", det: Any = None) -> ExampleResult:
        evidence = tuple(_describe(e) for e in det.evidence) if det is not None else ()
        version = det.version if det is not None else None
        return ExampleResult(sig.name, sig.path, i, expect, engine.mode, ok, reason, version, evidence)

    if not isinstance(example, Mapping) or not ({"match", "no_match"} & set(example)):
        return [result("?", False, "must be {match: page} or {no_match: page}")]
    out = []
    for expect in ("match", "no_match"):
        if expect not in example:
            continue
        spec = example[expect]
        if not isinstance(spec, Mapping):
            out.append(result(expect, False,
                              f"{expect}: must be a page (url, html, headers, cookies, script_urls, dns, cert_issuer)"))
            continue
        found = _detect_example(engine, spec)
        det = found.get(sig.name)
        if expect == "match" and det is None:
            out.append(result(expect, False, "the match example is not detected; fix the pattern or the example"))
        elif expect == "match" and "version" in spec and det is not None and (det.version or "") != str(spec["version"]):
            out.append(result(expect, False, f"expected version {spec['version']!r}, got {det.version!r}; "
                              "fix the \\;version: template or the example", det))
        elif expect == "no_match" and det is not None:
            out.append(result(expect, False, "the no_match example is detected; tighten the pattern", det))
        else:
            out.append(result(expect, True, "", det))
    return out
