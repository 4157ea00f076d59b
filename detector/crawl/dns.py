"""The crawl's DNS tier: each domain's MX, TXT, NS, SOA, ``_dmarc`` TXT and ``www`` CNAME, and
the issuer of the certificate its https connection showed.

Resolution uses our small stub client (:mod:`detector.crawl.dnsclient`) on the event loop
Scrapy's asyncio reactor runs (Scrapy's default reactor): a lookup is a few datagrams on one
socket of that loop, never a blocked thread, and it starts when a domain's homepage is
scheduled, so it runs while the page downloads.  Truncated answers are asked again over TCP;
NXDOMAIN, no data, SERVFAIL, timeouts and other errors are told apart per record type.

:class:`DnsPipeline` (before the detection pipeline) waits for a domain's lookups when its
:class:`~detector.crawl.items.SiteItem` arrives and attaches them: the records as
:class:`~detector.engine.network.NetworkFacts` for the engine, and the outcome per record type
on the scan (``dns_status``, ``dns_errors``).  Resolver errors are data, never a crash.

Names under special-use suffixes (:func:`detector.netpolicy.is_reserved_name`) are sent only
to a resolver the user named (``--resolver``); without one they are not looked up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.reactor import is_asyncio_reactor_installed

from detector.crawl.dnsclient import DnsClient, first_server, system_nameservers
from detector.crawl.items import SiteItem
from detector.engine.network import RECORD_TYPES, NetworkFacts, normalize_value
from detector.errors import DetectorError
from detector.netpolicy import is_ip_literal, is_reserved_name

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from typing_extensions import Self

log = logging.getLogger(__name__)

#: How a record type's lookup ended, besides answering with records.  ``nxdomain`` and
#: ``no_data`` are answers (the name or the record type does not exist); the others are
#: failures, after which the scan says nothing about what DNS would have shown.
DNS_ERROR_KINDS: dict[str, str] = {
    "nxdomain": "the name does not exist (NXDOMAIN)",
    "no_data": "the name exists but has no record of this type",
    "servfail": "the resolver failed to answer (SERVFAIL or refused)",
    "timeout": "no answer within the DNS timeout (UDP, then TCP for truncated answers)",
    "other": "any other failure; the message says which",
}
ANSWERED = frozenset({"nxdomain", "no_data"})
#: ``dns_status`` of a scan: every type answered; some failed; all failed; not looked up.
DNS_STATUSES = ("ok", "partial", "failed", "off", "skipped")
DEFAULT_PORT = 53


class ResolverError(DetectorError):
    """A ``--resolver`` value that is not HOST[:PORT]."""


def parse_resolver(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6 in brackets) as (host, port).

    >>> parse_resolver("127.0.0.1:5353"), parse_resolver("9.9.9.9"), parse_resolver("[::1]:53")
    (('127.0.0.1', 5353), ('9.9.9.9', 53), ('::1', 53))
    """
    value = text.strip()
    host, port = value, str(DEFAULT_PORT)
    if value.startswith("["):
        if "]" not in value:
            raise ResolverError(f'"{text}" is not HOST[:PORT]; write an IPv6 resolver as [::1]:53')
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ResolverError(f'"{text}" is not HOST[:PORT]; write an IPv6 resolver as [::1]:53')
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ResolverError(f'"{text}" is not HOST[:PORT]; write it like 127.0.0.1:5353 or 9.9.9.9')
    if not is_ip_literal(host):
        raise ResolverError(f'"{text}": the resolver must be an IP address (a name would need a resolver itself)')
    return host, int(port)


@dataclass(frozen=True, slots=True)
class DnsResult:
    """One domain's lookups: records by type, and for each type without records, why."""

    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    status: str = "ok"
    seconds: float = 0.0

    def to_json(self) -> str | None:
        """The errors as stored in ``scans.dns_errors`` (None when there are none)."""
        return json.dumps(dict(self.errors), sort_keys=True) if self.errors else None


def dns_status(errors: Mapping[str, str]) -> str:
    """``ok`` when every record type answered (records, NXDOMAIN, no data), else partial/failed.

    >>> dns_status({}), dns_status({"MX": "no_data: ..."}), dns_status({"MX": "timeout: ..."})
    ('ok', 'ok', 'partial')
    >>> dns_status({t: "servfail: x" for t in ("MX", "TXT", "NS", "SOA", "CNAME", "DMARC")})
    'failed'
    """
    failed = [t for t, e in errors.items() if e.split(":", 1)[0] not in ANSWERED]
    if not failed:
        return "ok"
    return "failed" if len(failed) >= len(RECORD_TYPES) else "partial"


class DnsResolver:
    """Looks up a domain's records on the running asyncio loop (see :mod:`detector.crawl.dnsclient`)."""

    def __init__(self, nameserver: tuple[str, int] | None, timeout: float = 5.0, *, proxied: bool = False,
                 resolv_conf: str = "/etc/resolv.conf") -> None:
        self.explicit = nameserver is not None
        self.timeout = timeout
        #: Why nothing is looked up at all ("" when lookups run): through an HTTP proxy with no
        #: resolver named, or no system resolver configured.
        self.refused = ""
        if proxied and not self.explicit:
            self.refused = "DNS cannot go through the HTTP proxy; name a resolver (--resolver) or use --no-dns"
        if nameserver is None:
            host = first_server(system_nameservers(resolv_conf))
            if host is None and not self.refused:
                self.refused = f"no system resolver is configured ({resolv_conf}); name one with --resolver"
            nameserver = (host or "127.0.0.1", DEFAULT_PORT)
        self.client = DnsClient(nameserver[0], nameserver[1], timeout)

    def skip_reason(self, domain: str) -> str | None:
        """Why a domain is not looked up at all, or None."""
        if self.refused:
            return self.refused
        if is_ip_literal(domain):
            return "an IP address has no DNS records of its own"
        if is_reserved_name(domain) and not self.explicit:
            return "a reserved name (.test, .example...) is sent only to a resolver named with --resolver"
        return None

    async def lookup(self, domain: str) -> DnsResult:
        """Every record type at once; a failed type is an error entry, never an exception."""
        started = time.monotonic()
        reason = self.skip_reason(domain)
        if reason is not None:
            return DnsResult({}, {"*": f"skipped: {reason}"}, "skipped")
        queries = [("MX", domain, "MX"), ("TXT", domain, "TXT"), ("NS", domain, "NS"), ("SOA", domain, "SOA"),
                   ("CNAME", "www." + domain, "CNAME"), ("DMARC", "_dmarc." + domain, "TXT")]
        outcomes = await asyncio.gather(*(self.client.ask(name, rdtype) for _, name, rdtype in queries))
        records: dict[str, tuple[str, ...]] = {}
        errors: dict[str, str] = {}
        for (key, _, _), outcome in zip(queries, outcomes, strict=True):
            if outcome.values:
                records[key] = tuple(normalize_value(key, v) for v in outcome.values)
            else:
                errors[key] = outcome.error
        return DnsResult(records, errors, dns_status(errors), round(time.monotonic() - started, 4))

    def close(self) -> None:
        """Close the client's socket."""
        self.client.close()


def cert_issuer(response: Any) -> str:
    """The issuer of the certificate an https response came with, as ``CN=..., O=..., C=...``
    ("" for http, or when the TLS layer did not give it)."""
    cert = getattr(response, "certificate", None)
    if cert is None:
        return ""
    try:
        issuer = cert.getIssuer()
    except Exception:  # noqa: BLE001 - a certificate we cannot read is one we do not know
        return ""
    parts = []
    for label, attr in (("CN", "commonName"), ("OU", "organizationalUnitName"), ("O", "organizationName"),
                        ("C", "countryName")):
        value = getattr(issuer, attr, None)
        if value:
            parts.append(f"{label}={value.decode('utf-8', 'replace') if isinstance(value, bytes) else value}")
    return ", ".join(parts)


class DnsPipeline:
    """Attach each site's DNS records and certificate issuer to its SiteItem (DETECTOR_DNS).

    Lookups start when a domain's first request is scheduled; the item waits here only for
    what is still running.  The certificate issuer is read from the first https response of
    the domain (no extra request); it is attached whether DNS is on or off.
    """

    def __init__(self, crawler: Crawler, resolver: DnsResolver | None) -> None:
        self.crawler = crawler
        self.resolver = resolver
        self.lookups: dict[str, asyncio.Future[DnsResult]] = {}
        self.issuers: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Read DETECTOR_DNS, DETECTOR_RESOLVER (HOST[:PORT] or "" for the system's) and DNS_TIMEOUT."""
        s = crawler.settings
        resolver: DnsResolver | None = None
        if s.getbool("DETECTOR_DNS", True):
            if not is_asyncio_reactor_installed():
                raise NotConfigured("the DNS tier needs Scrapy's asyncio reactor (TWISTED_REACTOR)")
            named = str(s.get("DETECTOR_RESOLVER") or "")
            resolver = DnsResolver(parse_resolver(named) if named else None, float(s.getfloat("DNS_TIMEOUT", 5.0)),
                                   proxied=bool(s.get("DETECTOR_PROXY")))
        pipeline = cls(crawler, resolver)
        if resolver is not None:
            crawler.signals.connect(pipeline.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(pipeline.response_received, signal=signals.response_received)
        return pipeline

    def request_scheduled(self, request: Request) -> None:
        """Start a domain's lookups with its first request, so they run while it downloads."""
        domain = request.meta.get("domain")
        if domain and domain not in self.lookups:
            self._start(domain)

    def response_received(self, response: Response, request: Request) -> None:
        """Keep the issuer of the first https certificate a domain's requests saw."""
        domain = request.meta.get("domain")
        if domain and domain not in self.issuers and response.url.startswith("https:"):
            issuer = cert_issuer(response)
            if issuer:
                self.issuers[domain] = issuer

    def _start(self, domain: str) -> asyncio.Future[DnsResult]:
        assert self.resolver is not None
        future = asyncio.ensure_future(self.resolver.lookup(domain))
        self.lookups[domain] = future
        return future

    async def process_item(self, item: Any) -> Any:
        """Wait for the domain's lookups (started earlier) and attach them to the item."""
        if not isinstance(item, SiteItem):
            return item
        domain = item.domain
        issuer = self.issuers.pop(domain, "")
        result: DnsResult | None = None
        if self.resolver is not None:
            future = self.lookups.pop(domain, None) or self._start(domain)
            self.lookups.pop(domain, None)
            try:
                result = await future
            except Exception as exc:  # noqa: BLE001 - a bug in a lookup is that domain's data
                result = DnsResult({}, {"*": f"other: {exc!r}"[:300]}, "failed")
            self._count(result)
        facts = NetworkFacts(result.records if result else {}, issuer, domain)
        scan = dataclasses.replace(
            item.scan,
            dns_status=result.status if result else "off",
            dns_errors=result.to_json() if result else None,
            cert_issuer=issuer or None,
        )
        return dataclasses.replace(item, scan=scan, network=facts)

    def _count(self, result: DnsResult) -> None:
        stats = self.crawler.stats
        stats.inc_value(f"detector/dns/{result.status}")
        for error in result.errors.values():
            stats.inc_value(f"detector/dns/error/{error.split(':', 1)[0]}")

    def close_spider(self) -> None:
        """Cancel lookups of domains that never produced an item (the run was stopped)."""
        for future in self.lookups.values():
            future.cancel()
        self.lookups.clear()
        if self.resolver is not None:
            self.resolver.close()
