"""The script_loader source: script URLs that inline snippets build, matched by scriptSrc rules."""

from __future__ import annotations

import time

import pytest

from detector.engine.loader import MAX_LOADER_URLS, loader_urls
from detector.engine.match import Engine
from detector.engine.page import Page

# Minimal snippets in the shape of the vendors' public install instructions (written for
# these tests; ids and keys are made up).
SNIPPETS = [
    ("Google Analytics",
     ("(function(i,s,o,g,r,a,m){i['GoogleAnalyticsObject']=r;a=s.createElement(o);a.async=1;a.src=g;"
     "m=s.getElementsByTagName(o)[0];m.parentNode.insertBefore(a,m)})"
     "(window,document,'script','https://www.google-analytics.com/analytics.js','ga');")),
    ("Google Analytics",
     ("var _gaq = _gaq || []; (function() { var ga = document.createElement('script'); ga.async = true;"
     "ga.src = ('https:' == document.location.protocol ? 'https://ssl' : 'http://www') + '.google-analytics.com/ga.js';"
     "document.body.appendChild(ga); })();")),
    ("Google Analytics",
     ("var s = document.createElement('script'); s.src = 'https://www.googletagmanager.com/gtag/js?id=' + 'G-TEST1';"
     "document.head.appendChild(s);")),
    ("Google Tag Manager",
     ("(function(w,d,s,l,i){w[l]=w[l]||[];var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;"
     "j.src='https://' + 'www.googletagmanager.com/gtm.js?id='+i;f.parentNode.insertBefore(j,f);})"
     "(window,document,'script','dataLayer','GTM-TEST');")),
    ("Hotjar",
     ("(function(h,o,t,j,a,r){h._hjSettings={hjid:1,hjsv:6};a=o.getElementsByTagName('head')[0];"
     "r=o.createElement('script');r.async=1;r.src=t+h._hjSettings.hjid+j+h._hjSettings.hjsv;a.appendChild(r);})"
     "(window,document,'https://static.hotjar.com/c/hotjar-','.js?sv=');")),
    ("Segment",
     ('analytics.load = function(key){var t=document.createElement("script");t.async=!0;'
     't.src="https://cdn.segment.com/analytics.js/v1/" + key + "/analytics.min.js";'
     'document.head.appendChild(t)}; analytics.load("KEY");')),
    ("Chartbeat",
     ("(function(){var e=document.createElement('script');e.setAttribute('src', '//static.chartbeat.com/js/chartbeat.js');"
     "document.body.appendChild(e);})();")),
    ("Quantcast Measure",
     ('var elem = document.createElement("script"); var proto = document.location.protocol == "https:" ? "https://secure" '
     ': "http://edge"; elem.src = (document.location.protocol == "https:" ? "https://secure" : "http://edge") '
     '+ ".quantserve.com/quant.js";')),
    ("Chartbeat",  # JSON configuration, as some tag managers emit it
     '{"tags": [{"src": "https:\\/\\/static.chartbeat.com\\/js\\/chartbeat.js"}]}'),
]


def _detect(engine: Engine, code: str, url: str = "https://site.example/") -> dict[str, list[str]]:
    page = Page.from_http(url, body=f"<html><head><script>{code}</script></head><body></body></html>")
    return {d.technology: [e.source for e in d.evidence] for d in engine.detect(page)}


@pytest.fixture(scope="module")
def compat(engine: Engine) -> Engine:
    return Engine.from_directories(None, mode="wappalyzer")


@pytest.mark.parametrize(("technology", "code"), SNIPPETS,
                         ids=["ga-analytics.js", "ga-ga.js-ternary", "gtag-concat", "gtm", "hotjar", "segment",
                              "chartbeat-setattribute", "quantcast-ternary", "json-config"])
def test_loader_snippets_detected_in_default_mode_only(engine: Engine, compat: Engine, technology: str,
                                                       code: str) -> None:
    found = _detect(engine, code)
    assert technology in found
    assert "script_loader" in found[technology]
    assert technology not in _detect(compat, code)


def test_loader_confidence_is_lower_than_a_script_tag(engine: Engine) -> None:
    page = Page.from_http("https://site.example/", body="<script>s.src='https://static.hotjar.com/c/hotjar-1.js'</script>")
    d = {d.technology: d for d in engine.detect(page)}["Hotjar"]
    assert d.confidence == 80
    ev = d.evidence[0]
    assert (ev.source, ev.confidence, ev.match) == ("script_loader", 80, "//static.hotjar.com/")
    tag = Page.from_http("https://site.example/", body='<script src="https://static.hotjar.com/c/hotjar-1.js"></script>')
    assert {d.technology: d.confidence for d in engine.detect(tag)}["Hotjar"] == 100


def test_a_url_already_in_a_script_tag_is_not_counted_twice(engine: Engine) -> None:
    html = ('<script src="https://static.hotjar.com/c/hotjar-1.js"></script>'
            "<script>var u = 'https://static.hotjar.com/c/hotjar-1.js';</script>")
    d = {d.technology: d for d in engine.detect(Page.from_http("https://site.example/", body=html))}["Hotjar"]
    assert [e.source for e in d.evidence] == ["script_src"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("s.src = '/wp-content/plugins/x/a.js'", ["https://site.example/wp-content/plugins/x/a.js"]),
        ("var a = 'https://cdn.example.com/lib.min.js';", ["https://cdn.example.com/lib.min.js"]),
        ("var a = '//cdn.example.com/lib.js';", ["https://cdn.example.com/lib.js"]),
        ('s.src = "https://cdn.example.com/a/" + v + "/b.js";', ["https://cdn.example.com/a/"]),
        ('var a = "https://cdn.example.com/a/" + v;', []),  # no src, no code path, no "script" near
        ("var proto = 'https://'; s.src = proto + 'cdn.example.com/x/y.js';", ["https://cdn.example.com/x/y.js"]),
        ("document.write('<script src=\"' + h + 'cdn.example.com/ga.js\" type=text/javascript>')",
         ["https://cdn.example.com/ga.js"]),
        ("var s = document.createElement('script'); var t = `https://cdn.example.com/${id}/a.js`;",
         ["https://cdn.example.com/"]),
        # links, images and stray strings are not scripts
        ('{"profile": "https://www.video.example/user/abc", "logo": "https://a.example/logo.png"}', []),
        ("s.src = 'https://a.example/pixel.gif?x=1'", []),
        ("var x = 'https://'; // nothing follows", []),
        ("s.src = 'data:text/javascript,alert(1)'", []),
        ("js.src=p+'://platform.example.com/widgets.js';", ["https://platform.example.com/widgets.js"]),
        ("var u = q + '://cdn.example.com/logo.png';", []),
    ],
    ids=["relative-src", "absolute", "protocol-relative", "concat-variable", "no-script-context", "proto-variable",
         "document-write", "template", "json-links", "image", "bare-scheme", "data-url",
         "scheme-variable", "scheme-variable-image"],
)
def test_loader_urls(code: str, expected: list[str]) -> None:
    assert loader_urls(code, "https://site.example/page") == expected


def test_huge_inline_script_is_bounded() -> None:
    unit = ("s.src='https://cdn%d.example.com/a.js';" "var q = \"//x\" + '" "'\n" "'//unterminated " "x = 'a' + 'b';")
    code = "".join(unit % i for i in range(60_000))  # about 5 MB of anchors and broken literals
    code += "'" + "//" * 500_000  # and one literal that never ends
    t0 = time.perf_counter()
    urls = loader_urls(code, "https://site.example/")
    elapsed = time.perf_counter() - t0
    assert len(urls) == MAX_LOADER_URLS
    assert elapsed < 5, elapsed  # linear and capped: well under a second on a laptop
