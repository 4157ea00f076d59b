"""The DNS tier: a real DNS server on 127.0.0.1 (dnslib), real crawls through the test proxy,
the engine's dns/certIssuer matching, resolver errors as data, and history after failed lookups."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli import cli
from detector.crawl.dns import DnsResolver, ResolverError, dns_status, parse_resolver
from detector.demo.vhosts import Route, Site, VirtualHostProxy
from detector.engine.checks import check_examples
from detector.engine.match import Engine
from detector.engine.network import NetworkFacts
from detector.engine.signatures import load_signatures
from tests.dns_server import DnsServer, free_udp_port, query
from tests.servers import rows, run_detector, start_proxy

# A long SPF record in several strings: with the other TXT records the answer is over 512
# bytes, so the UDP answer is truncated and the resolver must ask again over TCP.
SPF = ('"v=spf1 include:_spf.google.com include:mktomail.com include:_spf.salesforce.com " '
       '"include:servers.mcsv.net include:sendgrid.net include:mailgun.org include:amazonses.com " '
       '"include:mail.zendesk.com include:email.freshdesk.com ip4:192.0.2.0/24 ~all"')
ZONE = [
    "mailco.test. 300 IN MX 10 aspmx.l.google.com.",
    "mailco.test. 300 IN MX 20 alt1.aspmx.l.google.com.",
    f"mailco.test. 300 IN TXT {SPF}",
    'mailco.test. 300 IN TXT "google-site-verification=' + "Q" * 43 + '"',
    'mailco.test. 300 IN TXT "MS=ms12345678"',
    'mailco.test. 300 IN TXT "atlassian-domain-verification=' + "k" * 64 + '"',
    'mailco.test. 300 IN TXT "stripe-verification=' + "0" * 64 + '"',
    "mailco.test. 300 IN NS ns-1.awsdns-01.org.",
    "mailco.test. 300 IN NS ns-2.awsdns-02.co.uk.",
    "mailco.test. 300 IN SOA ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
    "www.mailco.test. 300 IN CNAME d1234abcd.cloudfront.net.",
    '_dmarc.mailco.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:reports@mailco.test"',
    # exists, but has no MX/TXT (no data); www and _dmarc do not exist (NXDOMAIN)
    "nodata.test. 300 IN NS ns1.nodata.test.",
    "nodata.test. 300 IN SOA ns1.nodata.test. admin.nodata.test. 1 7200 900 1209600 86400",
    # its MX goes away before the second crawl: then Google Workspace is removed
    "shrink.test. 300 IN MX 1 smtp.google.com.",
]
HTML = b"<html><head><title>Hi</title></head><body><p>A plain page.</p></body></html>"
SITES = {h: Site(h, {"/": Route(200, body=HTML)}) for h in ("mailco.test", "nodata.test", "shrink.test")}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(ZONE).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_proxy() -> Iterator[VirtualHostProxy]:
    """The test proxy, its certificates issued by a CA whose organisation is "Let's Encrypt"."""
    server = start_proxy(SITES, issuer="Let's Encrypt")
    yield server
    server.stop()


def _crawl(proxy: VirtualHostProxy, dns: DnsServer, tmp: Path, *extra: str) -> None:
    listing = tmp / "in.txt"
    listing.write_text("mailco.test\nnodata.test\nshrink.test\ngone.test\n", encoding="utf-8")
    run = run_detector(["crawl", str(listing), "--db", str(tmp / "dns.db"), "--proxy", proxy.url,
                        "--resolver", dns.address, "--workers", "0", "--pages", "0", "--retries", "0",
                        "--timeout", "3", "--miss-threshold", "1", *extra])
    assert run.code == 0, run.err


@pytest.fixture(scope="module")
def crawled(tls_proxy: VirtualHostProxy, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dns")
    _crawl(tls_proxy, dns_server, tmp)
    return tmp / "dns.db"


def _dns_evidence(db: Path, domain: str) -> dict[str, list[dict[str, str]]]:
    out = {}
    for r in rows(db, "select technology, evidence from detections where domain = ? and status = 'active'", domain):
        out[r["technology"]] = [e for e in json.loads(r["evidence"]) if e["source"] in ("dns", "cert_issuer")]
    return out


# ------------------------------------------------------------------ the test server itself
def test_the_zone_answers_like_a_dns_server(dns_server: DnsServer) -> None:
    assert query(dns_server.address, "mailco.test", "TXT").header.tc == 1  # > 512 bytes over UDP
    assert len(query(dns_server.address, "mailco.test", "TXT", tcp=True).rr) == 5
    assert query(dns_server.address, "gone.test", "MX").header.rcode == 3  # NXDOMAIN
    nodata = query(dns_server.address, "nodata.test", "MX")
    assert (nodata.header.rcode, nodata.rr) == (0, [])


# ------------------------------------------------------------------ crawls
def test_crawl_finds_the_stack_dns_shows(crawled: Path, dns_server: DnsServer) -> None:
    found = _dns_evidence(crawled, "mailco.test")
    expected = {
        "Google Workspace": "MX", "Microsoft 365": "TXT", "Marketo": "TXT", "Salesforce": "TXT",
        "MailChimp": "TXT", "Sendgrid": "TXT", "Mailgun": "TXT", "Amazon SES": "TXT", "Zendesk": "TXT",
        "Freshdesk": "TXT", "Google Search Console": "TXT", "Atlassian Cloud": "TXT", "Stripe": "TXT",
        "Amazon Route 53": "NS", "Amazon Web Services": "NS", "Amazon Cloudfront": "CNAME",
    }
    for tech, rtype in expected.items():
        assert tech in found, (tech, sorted(found))
        assert any(e["source"] == "dns" and e["key"] == rtype for e in found[tech]), (tech, found[tech])
    # The SPF record's strings are one value, as long as it was (it came over TCP).
    marketo = next(e for e in found["Marketo"] if e["key"] == "TXT")
    assert marketo["value"].startswith("v=spf1 include:_spf.google.com") and marketo["value"].endswith("~all")
    assert "include:mktomail.com include:_spf.salesforce.com include:servers.mcsv.net" in marketo["value"]
    assert marketo["page"] == "mailco.test"
    cloudfront = next(e for e in found["Amazon Cloudfront"] if e["key"] == "CNAME")
    assert (cloudfront["page"], cloudfront["value"]) == ("www.mailco.test", "d1234abcd.cloudfront.net")
    assert dns_server.queries["tcp"] >= 1


def test_certificate_issuer_is_detected_from_the_https_connection(crawled: Path) -> None:
    scan = rows(crawled, "select cert_issuer from scans where domain = 'mailco.test'")[0]
    assert "O=Let's Encrypt" in scan["cert_issuer"]
    evidence = _dns_evidence(crawled, "mailco.test")["Let's Encrypt"]
    assert evidence[0]["source"] == "cert_issuer" and "Let's Encrypt" in evidence[0]["value"]


def test_resolver_outcomes_are_recorded_per_record_type(crawled: Path) -> None:
    scans = {r["domain"]: r for r in rows(crawled, "select domain, status, dns_status, dns_errors from scans")}
    assert scans["mailco.test"]["dns_status"] == "ok" and scans["mailco.test"]["dns_errors"] is None
    nodata = json.loads(scans["nodata.test"]["dns_errors"])
    assert nodata["MX"].startswith("no_data:") and nodata["TXT"].startswith("no_data:")
    assert nodata["CNAME"].startswith("nxdomain: www.nodata.test") and "NS" not in nodata
    assert scans["nodata.test"]["dns_status"] == "ok"  # no data is an answer
    gone = json.loads(scans["gone.test"]["dns_errors"])
    assert set(gone) == {"MX", "TXT", "NS", "SOA", "CNAME", "DMARC"}
    assert all(v.startswith("nxdomain:") for v in gone.values())
    assert scans["gone.test"]["status"] == "error"


def test_a_failed_lookup_removes_nothing_but_a_vanished_record_does(
    crawled: Path, tls_proxy: VirtualHostProxy, dns_server: DnsServer
) -> None:
    before = _dns_evidence(crawled, "mailco.test")
    dns_server.failing |= {"mailco.test", "www.mailco.test", "_dmarc.mailco.test"}
    mx = dns_server.zone.pop("shrink.test")
    try:
        _crawl(tls_proxy, dns_server, crawled.parent)
    finally:
        dns_server.failing.clear()
        dns_server.zone["shrink.test"] = mx
    scan = rows(crawled, "select status, dns_status, dns_errors from scans where domain = 'mailco.test' "
                         "order by id desc limit 1")[0]
    assert (scan["status"], scan["dns_status"]) == ("ok", "failed")
    assert json.loads(scan["dns_errors"])["MX"].startswith("servfail:")
    after = _dns_evidence(crawled, "mailco.test")
    assert set(before) <= set(after)  # --miss-threshold 1, and still nothing removed
    assert not rows(crawled, "select * from changes where domain = 'mailco.test' and kind = 'removed'")
    # shrink.test's lookup answered, without its MX: that is a miss, and it counts.
    gone = rows(crawled, "select status from detections where domain = 'shrink.test' and technology = 'Google Workspace'")
    assert gone == [{"status": "removed"}]


# ------------------------------------------------------------------ the resolver alone
def test_resolver_errors_are_data(dns_server: DnsServer) -> None:
    dns_server.failing.add("mailco.test")
    try:
        result = asyncio.run(DnsResolver(parse_resolver(dns_server.address), 2.0).lookup("mailco.test"))
    finally:
        dns_server.failing.discard("mailco.test")
    assert result.errors["MX"].startswith("servfail:") and result.status == "partial"
    assert "CNAME" in result.records  # www.mailco.test still answered
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:  # takes queries, never answers
        hole.bind(("127.0.0.1", 0))
        silent = DnsResolver(("127.0.0.1", hole.getsockname()[1]), 0.5)
        timed_out = asyncio.run(silent.lookup("mailco.test"))
    assert timed_out.status == "failed" and timed_out.errors["MX"].startswith("timeout:")
    closed = DnsResolver(("127.0.0.1", free_udp_port()), 0.5)  # nothing listens: refused at once
    refused = asyncio.run(closed.lookup("mailco.test"))
    assert refused.status == "failed" and all(e.startswith(("other:", "timeout:")) for e in refused.errors.values())


def test_reserved_names_never_reach_an_unnamed_resolver(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# the system's\nnameserver 127.0.0.1\n", encoding="utf-8")
    system = DnsResolver(None, 1.0, resolv_conf=str(resolv))
    assert system.client.host == "127.0.0.1"
    result = asyncio.run(system.lookup("mailco.test"))
    assert result.status == "skipped" and "--resolver" in result.errors["*"]
    assert system.skip_reason("printer.local") and system.skip_reason("10.0.0.1")
    proxied = DnsResolver(None, 1.0, proxied=True, resolv_conf=str(resolv))
    assert "--no-dns" in (proxied.skip_reason("example.com") or "")
    none = DnsResolver(None, 1.0, resolv_conf=str(tmp_path / "missing.conf"))
    assert "no system resolver" in (none.skip_reason("example.com") or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [("127.0.0.1:0", "is not HOST[:PORT]"), ("dns.example:53", "must be an IP address"), ("[::1", "HOST[:PORT]")],
    ids=["port-0", "a-name", "bad-brackets"],
)
def test_bad_resolver_values(text: str, message: str) -> None:
    with pytest.raises(ResolverError, match=re.escape(message)):
        parse_resolver(text)


def test_proxy_needs_a_resolver_or_no_dns(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("example.com\n", encoding="utf-8")
    base = ["crawl", str(tmp_path / "a.txt"), "--db", str(tmp_path / "x.db"), "--proxy", "http://127.0.0.1:9"]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2
    assert "--resolver HOST[:PORT]" in result.output and "--no-dns" in result.output
    bad = CliRunner().invoke(cli, [*base, "--resolver", "nowhere"])
    assert bad.exit_code == 2 and "must be an IP address" in bad.output
    help_text = CliRunner().invoke(cli, ["refresh", "--help"]).output
    assert "--dns / --no-dns" in help_text and "--resolver" in help_text


# ------------------------------------------------------------------ the engine
def test_engine_matches_records_and_issuer(engine: Engine) -> None:
    facts = NetworkFacts.build({"MX": ["ASPMX.L.GOOGLE.COM."], "DMARC": ["v=DMARC1; rua=mailto:x@mktomail.com"],
                                "NS": ["kate.ns.cloudflare.com"]},
                               cert_issuer="CN=WE1, O=Google Trust Services, C=US", domain="acme.test")
    found = {d.technology: d for d in engine.detect_site([], facts)}
    assert {"Google Workspace", "Cloudflare DNS", "Google Trust Services"} <= set(found)
    assert "Marketo" not in found  # a DMARC report address is not an SPF include
    mx = found["Google Workspace"].evidence[0]
    assert (mx["source"], mx["key"], mx["value"], mx["page"]) == ("dns", "MX", "aspmx.l.google.com", "acme.test")
    assert engine.detect_site([], NetworkFacts()) == []


def test_dns_examples_are_run(tmp_path: Path) -> None:
    (tmp_path / "categories.yaml").write_text("1:\n  name: Email\n  priority: 1\n", encoding="utf-8")
    (tmp_path / "mx.yaml").write_text(
        "name: MxCo\ncategories: [Email]\ndns:\n  MX: mx\\.mxco\\.example$\nprovenance: test\nexamples:\n"
        "  - match: {dns: {MX: [mx.mxco.example]}}\n  - match: {dns: {TXT: [mx.mxco.example]}}\n"
        "  - no_match: {dns: {MX: [mx.mxco.example.evil]}}\n", encoding="utf-8")
    problems = check_examples(load_signatures([tmp_path]))
    expected = f'{tmp_path / "mx.yaml"}: "MxCo" examples[1]: the match example is not detected; '
    assert problems == [expected + "fix the pattern or the example"]


def test_unknown_record_type_is_a_library_problem(tmp_path: Path) -> None:
    from detector.engine.signatures import collect_library

    (tmp_path / "categories.yaml").write_text("1:\n  name: Email\n  priority: 1\n", encoding="utf-8")
    (tmp_path / "a.yaml").write_text("name: A\ncategories: [Email]\ndns:\n  AAAA: x\nprovenance: t\n", encoding="utf-8")
    _, problems = collect_library([tmp_path])
    assert any("dns['AAAA']: unknown record type" in p for p in problems)


def test_dns_status_doctest_values() -> None:
    assert dns_status({"MX": "nxdomain: x", "TXT": "timeout: y"}) == "partial"


def test_wire_format_reads_what_the_server_sends(dns_server: DnsServer) -> None:
    from detector.crawl.dnswire import TYPES, WireError, decode_answer

    packet = query(dns_server.address, "mailco.test", "SOA").pack()
    answer = decode_answer(bytes(packet))
    assert answer.values(TYPES["SOA"]) == [
        "ns-1.awsdns-01.org awsdns-hostmaster.amazon.com 1 7200 900 1209600 86400"]
    with pytest.raises(WireError):
        decode_answer(bytes(packet)[:20])
    loop = b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x0f\x00\x01"  # name points at itself
    with pytest.raises(WireError, match="loop"):
        decode_answer(loop)


@pytest.mark.parametrize(
    "module", ["detector.crawl.dns", "detector.crawl.dnswire", "detector.engine.network", "detector.store.scans"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
