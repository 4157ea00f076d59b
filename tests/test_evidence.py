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


def detected(engine: Engine, url: str, html: str, headers: dict[str, str] | None = None) -> dict[str, list[str]]:
    page = Page.from_http(url, headers=headers or {}, body=html)
    return {d.technology: [e.weak for e in d.evidence] for d in engine.detect(page)}


CSP = {"Content-Security-Policy": "default-src 'self'; connect-src 'self' https://s3.amazonaws.com https://api.example"}


def test_a_policy_allowance_alone_is_no_detection(engine: Engine, compat: Engine) -> None:
    # a security policy lists what the page may load, not what it loads
    assert "Amazon S3" not in detected(engine, "https://site.example/", "<p>x</p>", CSP)
    assert "Amazon Web Services" not in detected(engine, "https://site.example/", "<p>x</p>", CSP)
    assert "Amazon S3" in detected(compat, "https://site.example/", "<p>x</p>", CSP)
    # beside strong evidence it stays, marked weak
    both = detected(engine, "https://site.example/", '<script src="https://site-assets.s3.amazonaws.com/app.js"></script>',
                    CSP)
    assert sorted(both["Amazon S3"]) == ["", "policy allowance"]


BUCKETS = [
    # (page, script URL, the site's own bucket?)
    ("https://caktusgroup.com/", "https://cw-production-assetsbucket-8j84s7.s3.amazonaws.com/static/js/bundle.js", True),
    ("https://www.acme.example/", "https://s3.eu-west-1.amazonaws.com/static.acme.example/js/app.js", True),
    ("https://www.acme.example/", "https://assets.acme.example.s3.amazonaws.com/js/app.js", True),
    ("http://money.cnn.com/", "//s3.amazonaws.com/downloads.mailchimp.com/js/mc-validate.js", False),
    ("https://scienceblogs.de/", "https://s3.eu-central-1.amazonaws.com/prod.iqdcontroller.iqdigital/cdn/loader.js", False),
    ("https://www.acme.example/", "https://cdn.vendor.example.s3-website-us-east-1.amazonaws.com/tag.js", False),
]


@pytest.mark.parametrize(("page", "src", "own"), BUCKETS,
                         ids=["opaque-bucket", "path-style-own", "vhost-own", "vendor-path-style", "vendor-loader",
                              "vendor-vhost"])
def test_another_partys_bucket_is_not_the_sites_s3(engine: Engine, compat: Engine, page: str, src: str,
                                                    own: bool) -> None:
    tag = f'<script src="{src}"></script>'
    snippet = f"<script>var s = document.createElement('script'); s.src = '{src}'; document.head.appendChild(s);</script>"
    for html in (tag, snippet):
        assert ("Amazon S3" in detected(engine, page, html)) is own
        assert "Amazon S3" in detected(compat, page, tag)
    if not own:
        # the vendor's own technology on that URL still counts (MailChimp's validation script)
        assert "Amazon Web Services" not in detected(engine, page, tag)


def test_a_dotted_rule_needs_its_member(engine: Engine) -> None:
    # Cart Functionality's js rule is google_tag_params.ecomm_pagetype: the page data object
    # alone (every GTM4WP page writes it) is no shop
    plain = '<script>var google_tag_params = {"siteID": "1", "pageTitle": "A post"};</script>'
    shop = '<script>var google_tag_params = {ecomm_pagetype: "cart", ecomm_totalvalue: 12.5};</script>'
    assert "Cart Functionality" not in detected(engine, "https://site.example/", plain)
    assert "Cart Functionality" in detected(engine, "https://site.example/", shop)


GPT = ('<script async src="https://securepubads.g.doubleclick.net/tag/js/gpt.js"></script>'
       "<script>window.googletag = window.googletag || {cmd: []}; googletag.cmd.push(function() {"
       "googletag.defineSlot('/1234/top', [728, 90], 'div-top').addService(googletag.pubads()); });</script>")
GTM = ("<script>(function(w,d,s,l,i){w[l]=w[l]||[];var f=d.getElementsByTagName(s)[0],j=d.createElement(s);"
       "j.async=true;j.src='https://www.googletagmanager.com/gtm.js?id='+i;f.parentNode.insertBefore(j,f);"
       "})(window,document,'script','dataLayer','GTM-ABC1234');</script>")
ADSENSE = ('<script>google_ad_client = "ca-pub-1234567890123456";</script>'
           '<script src="http://pagead2.googlesyndication.com/pagead/show_ads.js"></script>')
OSD = '<script src="http://pagead2.googlesyndication.com/pagead/osd.js"></script>'


def test_google_ad_and_tag_products_are_told_apart(engine: Engine, compat: Engine) -> None:
    # googletag is Google Publisher Tag's global, not Google Tag Manager's
    gpt = detected(engine, "https://site.example/", GPT)
    assert "Google Publisher Tag" in gpt and "Google Tag Manager" not in gpt
    assert "Google Tag Manager" in detected(engine, "https://site.example/", GTM)
    # the classic AdSense code is AdSense, not Ad Exchange
    adsense = detected(engine, "https://site.example/", ADSENSE)
    assert "Google AdSense" in adsense and "DoubleClick Ad Exchange (AdX)" not in adsense
    # Active View's osd.js comes with Ad Manager ads: no AdSense
    assert "Google AdSense" not in detected(engine, "https://site.example/", GPT + OSD)
    assert "DoubleClick Ad Exchange (AdX)" in detected(compat, "https://site.example/", ADSENSE)


def test_hsts_switched_off_is_no_hsts(engine: Engine) -> None:
    on = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
    off = {"Strict-Transport-Security": "max-age=0"}
    assert "HSTS" in detected(engine, "https://site.example/", "<p>x</p>", on)
    assert "HSTS" not in detected(engine, "https://site.example/", "<p>x</p>", off)
