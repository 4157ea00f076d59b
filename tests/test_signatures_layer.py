"""Our own rules (signatures/detector/): every example runs, and every file keeps the layer's conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detector.engine.checks import example_mode, run_example
from detector.engine.match import Engine
from detector.engine.page import Page
from detector.engine.patterns import compile_pattern
from detector.engine.signatures import LAYER, Signature, default_directory, load_signatures, slugify

LIBRARY = load_signatures(None)
IMPORTED = load_signatures(None, layers=False)
OURS = sorted((s for s in LIBRARY.signatures.values() if s.layer), key=lambda s: s.name.lower())
EXAMPLES = [(s, i, ex) for s in OURS for i, ex in enumerate(s.examples)]
#: Every vendor the issue lists must have a rule of ours (by its name in the library).
VENDORS = (
    "HubSpot", "Marketo", "Salesforce Marketing Cloud Account Engagement", "Salesforce", "Eloqua", "ActiveCampaign",
    "MailChimp", "Klaviyo", "Braze", "Iterable", "Customer.io", "Attentive", "Intercom", "Drift", "Qualified",
    "Chili Piper", "Calendly", "Gong", "Vidyard", "Zendesk", "Freshchat", "Freshdesk", "Freshworks CRM", "LiveChat",
    "Crisp Live Chat", "Gorgias", "6sense", "Demandbase", "Clearbit Reveal", "Zoominfo", "Leadfeeder", "RB2B",
    "Warmly", "Mutiny", "Segment", "Rudderstack", "mParticle", "Tealium", "Google Analytics", "Google Ads",
    "Adobe Analytics", "Adobe Experience Platform Launch", "Amplitude", "Mixpanel", "Heap", "PostHog", "Pendo",
    "FullStory", "Hotjar", "Microsoft Clarity", "Optimizely", "VWO", "LaunchDarkly", "Statsig", "Facebook Pixel",
    "Linkedin Insight Tag", "TikTok Pixel", "Reddit Ads", "Twitter Ads", "Microsoft Advertising", "OneTrust",
    "Cookiebot", "TrustArc", "Usercentrics", "Osano", "Shopify", "Recharge", "Yotpo Reviews", "Okendo", "Judge.me",
    "BigCommerce", "Salesforce Commerce Cloud", "Magento", "commercetools", "Stripe", "Adyen", "PayPal",
    "Klarna Checkout", "Affirm", "WordPress VIP", "WP Engine", "Webflow", "Framer Sites", "Contentful", "Sanity",
    "Storyblok", "Adobe Experience Manager", "Sitecore", "HubSpot CMS Hub", "Vercel", "Netlify", "Cloudflare",
    "Akamai", "Fastly", "Amazon Cloudfront", "Sentry", "Datadog", "New Relic",
)


@pytest.fixture(scope="module")
def default_engine() -> Engine:
    return Engine(LIBRARY, mode="detector")


@pytest.mark.parametrize(
    ("sig", "index", "example"), EXAMPLES, ids=[f"{s.name}-{i}-{next(iter(ex))}" for s, i, ex in EXAMPLES]
)
def test_layer_example(default_engine: Engine, sig: Signature, index: int, example: Any) -> None:
    assert example_mode(sig) == "detector"
    for result in run_example(default_engine, sig, index, example):
        assert result.ok, f"{result.where} {result.expect}: {result.reason} {result.evidence}"


def test_every_listed_vendor_has_our_rules() -> None:
    missing = [name for name in VENDORS if name not in LIBRARY.signatures or not LIBRARY.signatures[name].layer]
    assert missing == []


@pytest.mark.parametrize("sig", OURS, ids=[s.name for s in OURS])
def test_layer_file_conventions(sig: Signature) -> None:
    root = default_directory()
    path = Path(sig.path)
    assert path.is_relative_to(root / LAYER)
    assert sig.provenance.startswith("detector: ") and len(sig.provenance) > 30
    kinds = {next(iter(ex)) for ex in sig.examples}
    assert {"match", "no_match"} <= kinds, "needs a match and a no_match example"
    assert sig.categories
    imported = IMPORTED.signatures.get(sig.name)
    if imported is not None:
        # same folder and file name as the imported file it replaces
        assert path.relative_to(root / LAYER) == Path(imported.path).relative_to(root)
    else:
        assert path.name == f"{slugify(sig.name)}.yaml"
        assert path.parent.name == slugify(sig.categories[0])


def test_layer_patterns_run_on_re2() -> None:
    slow = []
    for sig in OURS:
        for kind in ("url", "html", "scripts", "scriptSrc", "headers", "cookies", "meta"):
            value = sig.rules.get(kind)
            texts = [t for v in value.values() for t in (v if isinstance(v, list) else [v])] if isinstance(value, dict) \
                else (value if isinstance(value, list) else [value] if value is not None else [])
            slow += [f"{sig.name} {kind} {t}" for t in texts if compile_pattern(t).uses_python]
    assert slow == []


def test_wappalyzer_mode_leaves_the_layer_out() -> None:
    page = Page.from_http("https://a.example/", body='<script id="hs-script-loader" src="//js.hs-scripts.com/42.js"></script>'
                          '<script>posthog.init("phc_AbCdEfGhIjKlMnOp", {api_host: "https://us.i.posthog.com"})</script>')
    ours = {d.technology for d in Engine.from_directories(None).detect(page)}
    reference = Engine.from_directories(None, mode="wappalyzer")
    assert {"HubSpot", "PostHog"} <= ours
    assert "PostHog" not in reference.technologies
    assert "HubSpot" not in {d.technology for d in reference.detect(page)}
