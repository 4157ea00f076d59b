"""The default mode's extra sources and rules (README "Evidence rules"): package-CDN paths,
deferred script URLs, inline JavaScript globals, combined script URLs, share links, generic
file names, third-party infrastructure.  Each with pages that must match and pages that must
not; the wappalyzer mode has none of them."""

from __future__ import annotations

import doctest
import importlib

import pytest

from detector.engine.match import Detection, Engine
from detector.engine.page import Page


@pytest.fixture(scope="module")
def compat() -> Engine:
    return Engine.from_directories(None, mode="wappalyzer")


def detect(engine: Engine, html: str, headers: dict[str, str] | None = None) -> dict[str, Detection]:
    page = Page.from_http("https://site.example/page", headers=headers or {}, body=html)
    return {d.technology: d for d in engine.detect(page)}


def script(src: str) -> str:
    return f'<script src="{src}"></script>'


def inline(code: str) -> str:
    return f"<script>{code}</script>"


# (technology, version or None, page that must show it, page that must not)
CDN = [
    ("Moment.js", "2.29.4", script("https://cdnjs.cloudflare.com/ajax/libs/moment.js/2.29.4/moment.min.js"),
     '<link rel="preconnect" href="https://cdnjs.cloudflare.com/ajax/libs/moment.js/2.29.4/">'),
    ("Vue.js", "2.6.0", script("https://cdn.jsdelivr.net/npm/vue@2.6.0"),
     '<a href="https://cdn.jsdelivr.net/npm/vue@2.6.0">the Vue build we tested</a>'),
    ("Alpine.js", "2.8.2", script("https://cdn.jsdelivr.net/gh/alpinejs/alpine@v2.8.2/dist/alpine.min.js"),
     script("https://cdn.jsdelivr.net/gh/alpinejs/alpine/dist/alpine.min.js")),  # no version: no cdn_path hit
    ("React", "18.2.0", script("https://esm.sh/react@18.2.0"), "<p>import React from 'https://esm.sh/react@18.2.0'</p>"),
    ("jQuery", "3.6.0", script("https://ajax.googleapis.com/ajax/libs/jquery/3.6.0/jquery.min.js"), "<p>jquery</p>"),
    ("Font Awesome", "4.7.0",
     '<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.7.0/css/font-awesome.min.css">',
     '<link rel="dns-prefetch" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.7.0/">'),
    ("Alpine.js", "3.10.2", inline("var s=document.createElement('script');s.src='https://unpkg.com/alpinejs@3.10.2/dist/cdn.min.js';"),
     inline("var docs='see unpkg for alpine';")),
]


@pytest.mark.parametrize(("technology", "version", "present", "absent"), CDN,
                         ids=["cdnjs", "jsdelivr-npm-no-suffix", "jsdelivr-gh", "esm.sh", "google-hosted",
                              "cdnjs-stylesheet", "unpkg-in-loader"])
def test_versions_from_package_cdn_paths(engine: Engine, compat: Engine, technology: str, version: str,
                                         present: str, absent: str) -> None:
    found = detect(engine, present)
    assert technology in found, sorted(found)
    d = found[technology]
    assert d.version == version
    assert "cdn_path" in {e.source for e in d.evidence}
    gone = detect(engine, absent).get(technology)
    assert gone is None or "cdn_path" not in {e.source for e in gone.evidence}
    reference = detect(compat, present).get(technology)
    assert reference is None or "cdn_path" not in {e.source for e in reference.evidence}


def test_cdn_package_named_like_a_cms_is_not_the_cms(engine: Engine) -> None:
    # Only front-end asset categories are indexed: an npm package called "wordpress" is not the CMS.
    assert "WordPress" not in detect(engine, script("https://cdn.jsdelivr.net/npm/wordpress@1.0.0/index.js"))


def test_deferred_script_urls_count_as_loader_urls(engine: Engine, compat: Engine) -> None:
    gated = ('<script type="text/template" data-borlabs-script-blocker-src='
             '"//cdnjs.cloudflare.com/ajax/libs/gsap/2.1.3/TweenMax.min.js"></script>')
    found = detect(engine, gated)
    assert found["GSAP"].version == "2.1.3"
    assert {e.source for e in found["cdnjs"].evidence} == {"script_loader"}
    assert "cdnjs" not in detect(compat, gated)
    assert "cdnjs" not in detect(engine, '<img data-src="https://cdnjs.cloudflare.com/ajax/libs/x/1.0/x.png">')


def test_scripts_a_consent_manager_holds_count_as_loader_urls(engine: Engine, compat: Engine) -> None:
    held = ('<script type="text/plain" data-vendor="acme" data-content="&lt;script '
            'src=&quot;https://static.cleverpush.com/channel/loader/abc.js&quot; async&gt;&lt;/script&gt;"></script>')
    found = detect(engine, held)
    assert {e.source for e in found["CleverPush"].evidence} == {"script_loader"}
    assert "CleverPush" not in detect(compat, held)
    # markup without a script, or outside a data-* attribute, holds no script URL
    assert "CleverPush" not in detect(engine, '<script type="text/plain" data-content="&lt;p&gt;static.cleverpush.com/x.js&lt;/p&gt;"></script>')
    assert "CleverPush" not in detect(engine, '<script title="&lt;script src=https://static.cleverpush.com/a.js&gt;"></script>')


def test_scripts_in_ie_conditional_comments_count_as_loader_urls(engine: Engine, compat: Engine) -> None:
    page = '<!--[if lt IE 9]><script src="http://s1.site.example/compat/modernizr.js"></script><![endif]--><p>x</p>'
    found = detect(engine, page)
    assert {e.source for e in found["Modernizr"].evidence} == {"script_loader"}
    assert "Modernizr" not in detect(compat, page)
    # a plain comment is not markup
    assert "Modernizr" not in detect(engine, '<!-- <script src="/compat/modernizr.js"></script> -->')
    # written in capitals, as old templates do
    upper = '<!--[IF LT IE 9]><SCRIPT SRC="http://s1.site.example/compat/modernizr.js"></SCRIPT><![ENDIF]--><p>x</p>'
    assert "Modernizr" in detect(engine, upper)


def test_wordpress_plugin_folders_in_any_asset_url(engine: Engine, compat: Engine) -> None:
    wp = '<meta name="generator" content="WordPress 6.4.2">'
    css = wp + "<link rel='stylesheet' href='https://site.example/wp-content/plugins/contact-form-7/includes/css/styles.css'>"
    found = detect(engine, css)
    assert "asset_path" in {e.source for e in found["Contact Form 7"].evidence}
    font = wp + "<style>@font-face { src: url('/wp-content/themes/twentysixteen/genericons/Genericons.woff'); }</style>"
    assert [e.source for e in detect(engine, font)["Twenty Sixteen"].evidence] == ["asset_path"]
    image = wp + '<img src="https://site.example/wp-content/plugins/contact-form-7/images/ajax-loader.gif">'
    assert [e.source for e in detect(engine, image)["Contact Form 7"].evidence] == ["asset_path"]
    assert "Contact Form 7" not in detect(compat, image)
    # a folder no rule names, a look-alike path, and a plugin page on another site are nothing
    assert "Contact Form 7" not in detect(engine, wp + '<img src="/wp-content/plugins/contact-form-77/x.png">')
    assert "Contact Form 7" not in detect(engine, wp + '<a href="https://wordpress.org/plugins/contact-form-7/">CF7</a>')
    assert "Contact Form 7" not in detect(engine, wp + '<a href="/blog/wp-content-plugins/contact-form-7/">tips</a>')


GLOBALS = [
    ("Matomo Analytics", inline("var _paq = window._paq || []; _paq.push(['trackPageView']);"),
     inline("console.log('_paq is not defined'); x._paq = 1;")),
    ("jQuery", inline("jQuery(document).ready(function () {});"),
     inline("if (typeof jQuery == 'undefined') { load(); } var o = {jQuery: 1};")),
    ("Arc XP", inline('window.Fusion=window.Fusion||{};Fusion.arcSite="site";'),
     inline("var Fusion = 'a plain word as a local variable'; Fusion.length;")),
    ("Moment.js", inline('moment.locale("en");'), inline("var moment = 1; print(moment)")),
    ("Chartbeat", inline("var _sf_async_config = {uid: 1, domain: 'site.example'};"),
     '<p>_sf_async_config = {}</p>'),
]


@pytest.mark.parametrize(("technology", "present", "absent"), GLOBALS,
                         ids=["queue-snippet", "api-call", "defensive-definition", "named-after-technology",
                              "config-object"])
def test_inline_javascript_globals(engine: Engine, compat: Engine, technology: str, present: str,
                                   absent: str) -> None:
    found = detect(engine, present)
    assert technology in found, sorted(found)
    assert "inline_js" in {e.source for e in found[technology].evidence}
    assert technology not in detect(engine, absent)
    assert technology not in detect(compat, present)


def test_everyday_words_need_more_than_a_call(engine: Engine) -> None:
    # Technologies named after everyday words (Convert, HeadJS, core-js) are not found from a
    # function or variable of that name.
    found = detect(engine, inline("var head = document.head; head.appendChild(x); convert(1); core.run();"))
    assert not {"Convert", "HeadJS", "core-js"} & set(found)


def test_combined_script_urls_are_split(engine: Engine, compat: Engine) -> None:
    html = script("https://site.example/wp-content/plugins/bwp-minify/min/"
                  "?f=wp-includes/js/a.js,wp-content/plugins/contact-form-7/includes/js/scripts.js?ver=5.1")
    assert "Contact Form 7" in detect(engine, html)
    assert "Contact Form 7" not in detect(compat, html)
    assert "Contact Form 7" not in detect(engine, script("https://site.example/min/?f=wp-includes/js/a.js,b.js"))


RULES = [
    ("WhatsApp Business Chat", '<a href="https://wa.me/4915112345678">Chat with us</a>',
     '<a class="share-whatsapp" href="https://wa.me/?text=Read%20this">Share</a>'),
    ("WhatsApp Business Chat", '<a href="https://api.whatsapp.com/send?phone=4915112345678">Chat</a>',
     '<a href="https://api.whatsapp.com/send?p&amp;text=Read this https://site.example/a">Share</a>'),
    ("RSS", '<link rel="alternate" type="application/rss+xml" href="/feed/">',
     '<link rel="alternate" type="application/rss+xml"/>'),
    ("Bootstrap", script("/js/bootstrap.min.js"), script("//data-1.site.example/iomm/latest/bootstrap/loader.js")),
    ("Bootstrap", script("/assets/bootstrap-4.3.1.bundle.min.js"), script("//nexus.ensighten.example/acme/prod/Bootstrap.js")),
    ("Snowplow Analytics", script("https://site.example/js/sp.js"), script("http://atanx.alicdn.example/t/tanxssp.js?_v=12")),
]


@pytest.mark.parametrize(("technology", "present", "absent"), RULES,
                         ids=["chat-not-share", "send-phone-not-send-text", "link-without-href", "loader-directory",
                              "capitalised-loader", "file-name-inside-a-word"])
def test_evidence_rules(engine: Engine, compat: Engine, technology: str, present: str, absent: str) -> None:
    assert technology in detect(engine, present)
    assert technology not in detect(engine, absent)
    assert technology in detect(compat, absent)  # the reference engine takes these


def test_path_rules_count_links_on_the_site_only(engine: Engine, compat: Engine) -> None:
    own = '<a href="https://www.site.example/shop/checkout">Checkout</a>'
    other = '<a href="https://www.donations.example/give/1/checkout?x=1">Donate</a>'
    assert "Cart Functionality" in detect(engine, own)
    assert "Cart Functionality" not in detect(engine, other)
    assert "Cart Functionality" in detect(compat, other)


def test_a_client_side_library_does_not_imply_its_source_language(engine: Engine, compat: Engine) -> None:
    page = script("/js/fullcalendar.min.js")
    assert "FullCalendar" in detect(engine, page)
    assert "TypeScript" not in detect(engine, page)
    assert "TypeScript" in detect(compat, page)
    # a server-side implication stays: WordPress runs on PHP
    assert "PHP" in detect(engine, '<meta name="generator" content="WordPress 6.4">')


def test_third_party_cdn_implies_no_infrastructure(engine: Engine, compat: Engine) -> None:
    page = script("https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.17/d3.min.js")
    found = detect(engine, page)
    assert "cdnjs" in found and "Cloudflare" not in found
    assert found["D3"].version == "3.5.17"
    assert "Cloudflare" in detect(compat, page)
    # the site's own responses still say so
    assert "Cloudflare" in detect(engine, page, headers={"server": "cloudflare"})


@pytest.mark.parametrize("module", ["detector.engine.cdn", "detector.engine.globals", "detector.engine.loader",
                                    "detector.engine.evidence", "detector.engine.page"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
