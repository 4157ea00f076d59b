"""Pattern parsing, JavaScript -> Python/RE2 translation and version templates."""

from __future__ import annotations

import re

import pytest

from detector.engine.match import Engine
from detector.engine.patterns import (
    bound_quantifiers,
    compile_pattern,
    parse_pattern,
    resolve_version,
    translate,
)
from detector.engine.prefilter import HyperscanPrefilter, scan_form
from detector.errors import SignatureError


@pytest.mark.parametrize(
    ("text", "regex", "version", "confidence"),
    [
        ("jquery", "jquery", "", 100),
        ("jquery-([\\d.]+)\\;version:\\1", "jquery-([\\d.]+)", "\\1", 100),
        ("x\\;confidence:25", "x", "", 25),
        ("x\\;version:\\1?a:b\\;confidence:50", "x", "\\1?a:b", 50),
        ("", "", "", 100),
        (7, "7", "", 100),
    ],
)
def test_parse_pattern(text: object, regex: str, version: str, confidence: int) -> None:
    spec = parse_pattern(text)  # type: ignore[arg-type]
    assert (spec.regex, spec.version, spec.confidence) == (regex, version, confidence)


@pytest.mark.parametrize(
    ("source", "bounded"),
    [
        ("a+", "a{1,250}"),
        ("a*b", "a{0,250}b"),
        ("a\\+", "a\\+"),
        ("[\\w+]", "[\\w{1,250}]"),  # the reference engine rewrites inside classes too
        ("a/b", "a\\/b"),
    ],
)
def test_bound_quantifiers(source: str, bounded: str) -> None:
    assert bound_quantifiers(source) == bounded


# (pattern as written in a signature, text, should match) - JavaScript semantics
JS_CASES = [
    ("abc", "xxABCxx", True),  # case-insensitive
    ("^abc", "xabc", False),
    ("abc$", "abc\n", False),  # JavaScript $ is end of input only
    ("a.c", "a\rc", False),  # JavaScript . excludes \r too
    ("a.c", "a\u2028c", False),
    ("[^]", "\n", True),  # any character
    ("x[]", "x", False),  # empty class never matches
    ("[\\w-.]+\\.js", "my-lib.min.js", True),  # hyphen next to a class escape is literal
    ("\\e", "e", True),  # identity escape
    ("a{,2}", "a{,2}", True),  # not a quantifier in JavaScript
    ("(?<v>\\d)\\k<v>", "11", True),
    ("(a)\\1", "aa", True),
    ("a\\s+b", "a\u00a0b", True),  # JavaScript \s includes NBSP
    ("\\bword\\b", "a word.", True),
    ("priv[eé]", "PRIVÉ", True),  # non-ASCII case pairs fold, as in JavaScript
    ("yazılım", "YAZILIM", False),  # but never onto ASCII (ı is not I)
    ("a\\x41", "aA", True),
    ("\\u00e9", "é", True),
    ("(?!foo)bar", "bar", True),
    ("(?<!-)UPS", "-UPS", False),
    # the prefilter scans these from their longest literal on (see scan_form)
    ('<[^>]+(?:id|class)="livefyre', '<div class="a" id="livefyre">', True),
    ('(?:<link [^>]*href="[^"]+typekit\\.net|<a [^>]*rel="?lightbox)', '<a title=x rel="lightbox">', True),
    ("<script[^>]+\\bid=[\"']vendorTag[\"']", "<script async id='vendorTag'>", True),
    ("<script[^>]+\\bid=[\"']vendorTag[\"']", "<div id='vendorTag'>", False),
    ("^<[^>]+data-app-v=([\\d.]+)$", "<div data-app-v=1.2", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), JS_CASES)
@pytest.mark.parametrize("accelerated", [True, False])
def test_javascript_semantics(pattern: str, text: str, expected: bool, accelerated: bool) -> None:
    compiled = compile_pattern(pattern)
    assert (compiled.search(text, accelerated) is not None) is expected


@pytest.mark.parametrize(("pattern", "text", "_"), JS_CASES)
def test_hyperscan_form_is_a_superset(pattern: str, text: str, _: bool) -> None:
    """Whenever the exact pattern matches, its prefilter form must select it."""
    pytest.importorskip("hyperscan")
    from detector.engine.prefilter import HyperscanPrefilter

    compiled = compile_pattern(pattern)
    if compiled.search(text) is None:
        return
    prefilter = HyperscanPrefilter([compiled])
    assert prefilter.always == set(), "the pattern has a Hyperscan form"
    assert prefilter.candidates(text) == {0}


@pytest.mark.parametrize(
    ("expression", "form"),
    [
        ('<[^>]{1,}(?:id|class)="livefyre', '(?:id|class)="livefyre'),
        ("<script[^>]{1,}\\bid=[\"']vendorTag[\"']", "\\bid=[\"']vendorTag[\"']"),
        ('(?:<link [^>]{0,}href="[^"]{1,}typekit\\.net|<a [^>]{0,}rel="?lightbox)', '(?:typekit\\.net|rel="?lightbox)'),
        ("^<[^>]{1,}data-app-v=([\\d.]{1,})\\z", "data-app-v=([\\d.]{1,})\\z"),
        ("bootstrap[^>]{0,}\\.min\\.js", "bootstrap[^>]{0,}\\.min\\.js"),  # its longest literal is first
        ("<[^>]{1,}abc", "<[^>]{1,}abc"),  # too short a literal to stand alone
        ("(a)[^>]{1,}\\1longer", "(a)[^>]{1,}\\1longer"),  # a back reference: left whole
        ("(?:x[^>]{1,}hello)?", "(?:x[^>]{1,}hello)?"),  # an optional group: left whole
    ],
)
def test_scan_form_drops_the_context_before_the_longest_literal(expression: str, form: str) -> None:
    assert scan_form(expression) == form


def test_every_bundled_pattern_keeps_a_hyperscan_form(engine: Engine) -> None:
    """No pattern of the library falls back to 'always a candidate' for its scan form."""
    pytest.importorskip("hyperscan")
    if not engine.use_hyperscan:
        pytest.skip("the engine runs without Hyperscan")
    prefilters = [*engine._prefilters.values(), *engine._keyed_prefilters.values()]
    assert [p.always for p in prefilters if isinstance(p, HyperscanPrefilter) and p.always] == []


@pytest.mark.parametrize(
    ("template", "groups", "expected"),
    [
        ("\\1", ("x1.2", "1.2"), "1.2"),
        ("\\1.\\2", ("m", "3", "4"), "3.4"),
        ("\\1?next:", ("m", "x"), "next"),
        ("\\1?next:", ("m", None), ""),
        ("\\1?2+:1", ("m", None), "1"),
        ("\\1", ("m", "12345678901"), ""),  # groups longer than 10 characters are not used
        ("v\\2", ("m", "1"), "v"),  # an unmatched reference is dropped
        ("  \\1 ", ("m", "5"), "5"),
        ("4", ("m",), "4"),
    ],
)
def test_resolve_version(template: str, groups: tuple[str | None, ...], expected: str) -> None:
    assert resolve_version(template, groups) == expected


def test_version_from_match() -> None:
    p = compile_pattern("jquery[.-]([\\d.]*\\d)[^/]*\\.js\\;version:\\1")
    m = p.search("https://cdn/jquery-3.6.0.min.js")
    assert m is not None and p.version_for(m) == "3.6.0"


@pytest.mark.parametrize("bad", ["a(b", "[a-", "a{2,1}", "(?<=a+)b"])
def test_invalid_regex_raises_signature_error(bad: str) -> None:
    with pytest.raises(SignatureError):
        compile_pattern(bad)


def test_translation_keeps_python_and_re2_in_step() -> None:
    py, *_ = translate("a.b$", "python")
    assert re.search(py, "a-b") and not re.search(py, "a\nb")
    r2, *_ = translate("a.b$", "re2")
    assert r2.endswith("\\z")


@pytest.mark.parametrize("module", ["detector.engine.prefilter", "detector.engine.evidence"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
