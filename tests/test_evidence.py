"""The default mode's rules of evidence (README "Evidence rules"): each with pages that must
match and pages that must not, and the wappalyzer mode unchanged."""

from __future__ import annotations

import doctest
import importlib

import pytest

from detector.engine.match import Engine
from detector.engine.page import Page, parse_cookies, split_set_cookie

SHOP = '<script src="https://cdn.shopify.com/s/files/1/app.js"></script>'  # an Ecommerce technology


@pytest.fixture(scope="module")
def compat() -> Engine:
    return Engine.from_directories(None, mode="wappalyzer")


def found(engine: Engine, html: str, url: str = "https://site.example/") -> dict[str, list[tuple[str, str]]]:
    return {d.technology: [(e.source, e.weak) for e in d.evidence]
            for d in engine.detect(Page.from_http(url, body=html))}


# (technology, html that must detect it in the default mode, html that must not)
CASES = [
    ("Google Font API",
     '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">',
     '<link rel="preconnect" href="https://fonts.gstatic.com">'),
    ("Google Font API",
     ('<link rel="preconnect" href="https://fonts.gstatic.com">'
     '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'),
     '<link rel="dns-prefetch" href="//fonts.googleapis.com"><link rel="preload" href="https://fonts.gstatic.com/a.woff2">'),
    ("Cart Functionality", '<a href="/cart">Cart</a>', '<a href="/cartoons/">Cartoons</a>'),
    ("Cart Functionality", '<a href="/shop/cart/">Cart</a>', '<a href="/sports/basketball/">Basketball</a>'),
    ("Cart Functionality", '<a href="/cart?step=1">Cart</a>', '<a href="/cart-blanche">Column</a>'),
    ("UPS", SHOP + "<p>We ship with UPS.</p>", SHOP + "<p>Join our user groups.</p>"),
    ("UPS", SHOP + "<p>Ship with UPS.</p>", SHOP + "<p>Life has its ups and downs.</p>"),
    ("APC", SHOP + "<p>Delivered by APC.</p>", SHOP + "<p>Read about the GAPC programme.</p>"),
    ("MailChimp",
     '<!-- Begin MailChimp Signup Form --><form id="mc-embedded-subscribe-form" action="x"></form>',
     "<!-- Begin MailChimp Signup Form --><p>Subscribe by email</p>"),
    ("Yoast SEO",  # a comment the software writes about the page it generated stays evidence
     "<!-- This site is optimized with the Yoast SEO plugin v20.1 - https://yoast.com/ -->",
     "<p>Yoast SEO</p>"),
    ("Google Analytics",
     '<script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123"></script>',
     '<script async src="https://www.googletagmanager.com/gtag/js?id=AW-123456"></script>'),
    ("Google Analytics",
     '<script async src="https://www.googletagmanager.com/gtag/js?l=dataLayer&id=UA-1234-1"></script>',
     '<script async src="https://www.googletagmanager.com/gtag/js?id=DC-123456"></script>'),
    # commented-out code never runs: an inline rule matching only inside a JS comment is weak
    ("Google Analytics",
     "<script>// track clicks\n$('a').click(function(){ ga('send', 'event', 'nav', 'x'); });</script>",
     "<script>$('a').click(function(){ /* ga('send', 'event', 'nav', 'x'); */ });</script>"),
    ("Google Analytics",
     "<script>var u = 'https://site.example/x'; ga('send', 'pageview');</script>",
     "<script>var u = 1; // ga('send', 'pageview');\n</script>"),
]
IDS = ["preconnect-alone", "hints-alone", "cart-cartoons", "cart-basketball", "cart-query", "ups-in-groups",
       "ups-english-word", "apc-inside-word", "mailchimp-comment", "generator-comment", "gtag-aw", "gtag-dc",
       "js-block-comment", "js-line-comment"]


# cases whose rule is in our own layer only (left out of the wappalyzer mode), or that the
# reference also refuses
_LAYER_ONLY = ("ups-in-groups", "generator-comment", "js-block-comment", "js-line-comment")


@pytest.mark.parametrize(("technology", "present", "absent"), CASES, ids=IDS)
def test_evidence_rule(engine: Engine, technology: str, present: str, absent: str) -> None:
    assert technology in found(engine, present)
    assert technology not in found(engine, absent)


@pytest.mark.parametrize(("technology", "present", "absent"),
                         [c for c, i in zip(CASES, IDS) if i not in _LAYER_ONLY],
                         ids=[i for i in IDS if i not in _LAYER_ONLY])
def test_wappalyzer_mode_keeps_the_reference_semantics(compat: Engine, technology: str, present: str,
                                                       absent: str) -> None:
    # the pages the default mode refuses are detections of the reference engine
    assert technology in found(compat, absent)


def test_weak_evidence_is_marked_beside_strong(engine: Engine) -> None:
    html = ('<link rel="preconnect" href="https://fonts.gstatic.com">'
            '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">')
    assert sorted(found(engine, html)["Google Font API"]) == [("dom", ""), ("dom", "resource hint")]
    detection = next(d for d in engine.detect(Page.from_http("", body=html)) if d.technology == "Google Font API")
    assert sorted(e.get("weak", "") for e in detection.to_dict()["evidence"]) == ["", "resource hint"]


def test_html_hint_link_is_weak(engine: Engine) -> None:
    # an html rule (not a dom one) that matches inside a <link rel=preload> only
    html = '<link rel="preload" href="https://cdn.shopify.com/s/files/1/app.js" as="script">'
    shop = found(engine, html).get("Shopify")
    assert shop is None or all(weak for _, weak in shop)


def test_weak_evidence_across_a_site(engine: Engine) -> None:
    hint = Page.from_http("https://site.example/", body='<link rel="preconnect" href="https://fonts.gstatic.com">')
    sheet = Page.from_http("https://site.example/b",
                           body='<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">')
    assert "Google Font API" not in {v.technology for v in engine.detect_site([hint])}
    assert "Google Font API" in {v.technology for v in engine.detect_site([hint, sheet])}


def test_site_and_page_agree_on_weak_evidence(engine: Engine) -> None:
    page = Page.from_http("https://site.example/", body="<!-- Begin MailChimp Signup Form --><p>x</p>"
                          '<a href="/cartoons/">c</a>')
    assert {d.technology for d in engine.detect(page)} == {v.technology for v in engine.detect_site([page])}


SET_COOKIES = [
    ("a=1; Path=/, b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT", ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"]),
    ("a=1; Expires=Wed, 21-Oct-2026 07:28:00 GMT; Path=/, b=2", ["a=1; Expires=Wed, 21-Oct-2026 07:28:00 GMT; Path=/", "b=2"]),
    ("PHPSESSID=x; path=/", ["PHPSESSID=x; path=/"]),
    ("a=1,b=2,c=3", ["a=1", "b=2", "c=3"]),
    ("a=1; Expires=Thursday, 01-Jan-70 00:00:01 GMT, _ga_ABC=GS1", ["a=1; Expires=Thursday, 01-Jan-70 00:00:01 GMT",
                                                                    "_ga_ABC=GS1"]),
]


@pytest.mark.parametrize(("folded", "cookies"), SET_COOKIES,
                         ids=["expires-date", "expires-dashes", "single", "bare", "long-day-name"])
def test_folded_set_cookie_is_split(folded: str, cookies: list[str]) -> None:
    assert split_set_cookie(folded) == cookies


def test_folded_set_cookie_feeds_cookie_rules(engine: Engine, compat: Engine) -> None:
    folded = "session=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT, PHPSESSID=abc; Path=/; HttpOnly"
    page = Page.from_http("https://site.example/", headers={"Set-Cookie": folded}, body="<p>x</p>")
    assert parse_cookies(page) == {"session": "1", "phpsessid": "abc"}
    for eng in (engine, compat):
        assert "PHP" in {d.technology for d in eng.detect(page)}


@pytest.mark.parametrize("module", ["detector.engine.evidence", "detector.engine.loader", "detector.engine.page"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
