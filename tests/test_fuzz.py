"""Input fuzzing with hypothesis: random bytes, headers, cookies and HTML to the engine; random
lines and CSVs to the domain parser and the accounts import; random rules files to the rules
parser.  Bad input may be refused, with our own error; it may never raise anything else.

Example counts are modest so the suite stays fast; raise them locally with
``--hypothesis-seed`` and ``HYPOTHESIS_PROFILE=long`` when hunting.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from detector.engine.match import Engine
from detector.engine.page import Page
from detector.errors import DetectorError
from detector.inputs import DomainEntry, InvalidLine, clean_domain, read_domains
from detector.segment.rules import parse_rules
from detector.store.accounts import read_accounts
from tests.test_segment import RULES, VOCAB

settings.register_profile("suite", max_examples=60, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

FRAGMENTS = [
    "<html>", "</html>", "<head>", "<body>", "<script src=\"", "\"></script>", "<script>", "</script>",
    "<meta name=\"generator\" content=\"", "PressCMS 6.1.2", "\">", "<link href=\"/press-content/a.css\">",
    "<div", " class=\"x\"", ">", "</div>", "<!--", "-->", "<![CDATA[", "]]>", "&amp;", "&#x0;", "&#99999999;",
    "\x00", "\ufffd", "\ud800", "<?xml ?>", "<svg><style>", "<iframe srcdoc=\"", "<a href=javascript:x>",
    "<base href=\"//evil.test/\">", "<noscript>", "<template>", "<select><option>", "\r\n", "=" * 40,
]
html = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=30), max_size=60).map("".join)
header_name = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1,
                      max_size=20)
header_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120) | st.sampled_from([
    "text/html; charset=base64", "text/html; charset=x-nope", "text/html; charset=utf-7", "application/octet-stream",
    "PressCMS", "press_session=1; Path=/", "gzip", "",
])
headers = st.lists(st.tuples(st.sampled_from(["Content-Type", "Set-Cookie", "Server", "X-Press", "X-Powered-By"])
                             | header_name, header_value), max_size=12)
urls = st.sampled_from(["https://shop.test/", "", "http://[::1]/", "https://xn--n3h.test/%ff?a=<b>"]) | st.text(max_size=40)


@given(url=urls, status=st.none() | st.integers(-1, 1000), hdrs=headers, body=st.binary(max_size=3000))
def test_engine_survives_random_bytes(test_engine: Engine, url: str, status: int | None,
                                      hdrs: list[tuple[str, str]], body: bytes) -> None:
    page = Page.from_http(url, status=status, headers=hdrs, body=body)
    assert isinstance(test_engine.detect(page), list)


@given(text=html, hdrs=headers, cookies=st.dictionaries(header_name, header_value, max_size=5),
       scripts=st.lists(urls, max_size=5))
def test_engine_survives_random_html(test_engine: Engine, text: str, hdrs: list[tuple[str, str]],
                                     cookies: dict[str, str], scripts: list[str]) -> None:
    body = text.encode("utf-8", "surrogatepass")
    page = Page.from_http("https://shop.test/", status=200, headers=hdrs, body=body, cookies=cookies,
                          script_urls=scripts)
    found = test_engine.detect(page)
    if "PressCMS 6.1.2" in text and "<meta name=\"generator\" content=\"PressCMS 6.1.2\">" in text:
        assert found is not None
    assert isinstance(test_engine.detect_site([page, Page.from_http("https://shop.test/a", body=text)]), list)


@given(line=st.text(max_size=80) | st.sampled_from(["https://a.b.example.com/x", "xn--", "1.2.3.4", "[::1]:80",
                                                      "a..b.com", "-a.com", "a.com:http", "\u2603.com", "." * 300]),
       keep=st.booleans(), allow_ip=st.booleans())
def test_domain_parser_never_crashes(line: str, keep: bool, allow_ip: bool) -> None:
    try:
        cleaned = clean_domain(line, keep_subdomains=keep, allow_ip=allow_ip)
    except DetectorError:
        return
    assert cleaned and cleaned == cleaned.strip().lower()


cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["example.com", "https://www.shop.example/", "", "\"", ",", "\t", "domain", "website", "10"])
csv_text = st.lists(st.lists(cells, min_size=1, max_size=5).map(lambda r: ",".join(r)), max_size=8).map("\n".join)


@given(text=csv_text, header=st.sampled_from(["domain,name", "website\tx", "Name;Website", "", "url"]))
def test_domain_lists_and_csvs_never_crash(text: str, header: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "domains.csv"
        path.write_text(header + "\n" + text, encoding="utf-8")
        try:
            entries = list(read_domains([str(path)]))
        except DetectorError:
            return
    assert all(isinstance(e, (DomainEntry, InvalidLine)) for e in entries)


@given(text=csv_text, header=st.sampled_from(["domain,employees,country", "website;revenue", "a,b", "", "domain"]))
@example(text="\r0", header="domain,employees,country")  # csv.Error escaped read_accounts once
def test_accounts_import_never_crashes(text: str, header: str) -> None:
    try:
        rows, _result = read_accounts(header + "\n" + text, "accounts.csv", clean_domain)
    except DetectorError:
        return
    assert isinstance(rows, list)


yaml_scalars = st.sampled_from(["Shopify", "Ecommerce", "90", "-1", "[]", "{}", "~", "'", "\"x", "*a", "&a x",
                                "!!python/object:os.system", "1e999", "[Shopify, Klaviyo]", "{between: [1]}"])
rule_lines = st.lists(st.tuples(st.sampled_from(["", "  ", "    ", "- "]),
                                st.sampled_from(["product", "name", "category", "competitors", "market", "country",
                                                 "freshness", "max_age_days", "tiers", "points", "cohorts",
                                                 "maturity", "levels", "weights", "x"]) | st.text(max_size=8),
                                yaml_scalars | st.text(max_size=15)),
                      max_size=15).map(lambda ls: "\n".join(f"{i}{k}: {v}" for i, k, v in ls))


@given(text=rule_lines | st.text(max_size=200) | st.sampled_from([RULES]).flatmap(
    lambda base: st.integers(0, len(base)).map(lambda cut: base[:cut])))
def test_rules_parser_never_crashes(text: str) -> None:
    try:
        parse_rules(text, VOCAB)
    except DetectorError:
        pass
