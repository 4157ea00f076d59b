"""What DNS and TLS say about a site, in the shape the engine matches: pure data, no network.

The crawl (:mod:`detector.crawl.dns`) resolves a domain's records and reads the issuer of the
certificate its https connection presented; the engine matches the library's ``dns`` and
``certIssuer`` rules against them (:meth:`detector.engine.match.Engine.detect_site`).

Record values are matched in their presentation text, the way the rules were written:

* ``MX``: the exchange name (``aspmx.l.google.com``), without priority or trailing dot;
* ``TXT``: one record's strings joined without separator (RFC 7208 3.3: a long SPF record
  split into several strings is one record);
* ``NS``, ``CNAME``: the target name; ``CNAME`` is that of ``www.<domain>``;
* ``SOA``: ``mname rname serial refresh retry expire minimum``;
* ``DMARC``: the TXT records of ``_dmarc.<domain>`` (a key of ours: the library's ``TXT``
  rules are about the domain's own TXT records, and a DMARC report address names a vendor
  the domain itself uses, so rules name it apart).

Names are lower-case and without the trailing dot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The record types the crawl looks up, as rules name them (``dns: {MX: ...}``).
RECORD_TYPES = ("MX", "TXT", "NS", "SOA", "CNAME", "DMARC")
#: The longest record value matched (a TXT record may hold up to 64 KB in theory).
VALUE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """A site's DNS records (record type -> values) and its certificate issuer ("" unknown)."""

    dns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cert_issuer: str = ""
    #: The domain the records are of; DNS evidence names the queried name from it.
    domain: str = ""

    @classmethod
    def build(cls, dns: Mapping[str, Any] | None = None, cert_issuer: str = "", domain: str = "") -> NetworkFacts:
        """Facts from loose data: record types in any case, a value or a list of values.

        >>> NetworkFacts.build({"mx": "ASPMX.L.Google.com.", "TXT": ["v=spf1 -all"]}).dns
        {'MX': ('aspmx.l.google.com',), 'TXT': ('v=spf1 -all',)}
        """
        records: dict[str, tuple[str, ...]] = {}
        for rtype, values in (dns or {}).items():
            kind = str(rtype).upper()
            items = values if isinstance(values, (list, tuple)) else [values]
            records[kind] = tuple(normalize_value(kind, str(v)) for v in items if v is not None)
        return cls(records, str(cert_issuer or ""), domain)

    def __bool__(self) -> bool:
        return bool(self.cert_issuer) or any(self.dns.values())

    def queried_name(self, rtype: str) -> str:
        """The name a record type was looked up at: ``www.`` for CNAME, ``_dmarc.`` for DMARC.

        >>> NetworkFacts(domain="acme.test").queried_name("CNAME")
        'www.acme.test'
        """
        if not self.domain:
            return ""
        prefix = {"CNAME": "www.", "DMARC": "_dmarc."}.get(rtype, "")
        return prefix + self.domain


def normalize_value(rtype: str, value: str) -> str:
    """A record value as rules see it: names lower-case without the trailing dot; TXT as is.

    >>> normalize_value("NS", "NS-1.AWSDNS-01.ORG."), normalize_value("TXT", "MS=ms123")
    ('ns-1.awsdns-01.org', 'MS=ms123')
    >>> normalize_value("SOA", "NS1.Example. Host.Example. 1 2 3 4 5")
    'ns1.example host.example 1 2 3 4 5'
    """
    if rtype in ("TXT", "DMARC"):
        return value[:VALUE_LIMIT]
    return " ".join(part.rstrip(".") for part in value.lower().split())[:VALUE_LIMIT]

