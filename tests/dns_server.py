"""A real authoritative DNS server on 127.0.0.1 (UDP and TCP on one free port), built on dnslib.

It answers from a zone given as text lines (``name TYPE value``), like a zone file:

* names it has records for answer them; asked for a type they lack, they answer NOERROR
  with no records (no data);
* any other name answers NXDOMAIN;
* names in :attr:`DnsServer.failing` answer SERVFAIL (a test can break a name between runs);
* over UDP an answer over 512 bytes is truncated (TC set, as a server without EDNS does), so
  the client must retry over TCP; :attr:`DnsServer.queries` counts queries by protocol.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

UDP_LIMIT = 512


class _TruncatingHandler(DNSHandler):  # type: ignore[misc]
    """Truncates UDP answers over 512 bytes the way servers do: header and question kept,
    records dropped, TC set (dnslib's own truncation drops the question too, which resolvers
    reject as an answer to another query)."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > UDP_LIMIT:
            short = request.reply()
            short.header.rcode = reply.header.rcode
            short.header.tc = 1
            packed = short.pack()
        return packed


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.server.lock:
            self.server.queries[handler.protocol] += 1
            self.server.asked.append((qname, qtype, handler.protocol))
            if qname in self.server.failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
        records = self.server.zone.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, rr in records:
            if rtype == qtype:
                reply.add_answer(rr)
        return reply


class DnsServer:
    """An authoritative server for a small zone; ``address`` is what ``--resolver`` takes."""

    def __init__(self, zone_lines: Iterable[str]) -> None:
        self.zone: dict[str, list[tuple[str, RR]]] = {}
        for line in zone_lines:
            self.add(line)
        self.failing: set[str] = set()
        self.queries: Counter[str] = Counter()
        self.asked: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self._servers: list[DNSServer] = []
        self.port = 0

    def add(self, line: str) -> None:
        """Add one record in zone-file syntax: ``name TYPE value`` (names get a trailing dot)."""
        name = line.split(None, 1)[0].rstrip(".").lower()
        for rr in RR.fromZone(line if line.split(None, 1)[0].endswith(".") else name + ". " + line.split(None, 1)[1]):
            self.zone.setdefault(name, []).append((QTYPE[rr.rtype], rr))

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        """Listen on one free port, UDP and TCP (tried again if TCP's half is taken)."""
        resolver = _ZoneResolver(self)
        for _ in range(20):
            udp = DNSServer(resolver, address="127.0.0.1", port=0, handler=_TruncatingHandler)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, handler=_TruncatingHandler)
            except OSError:
                udp.server.server_close()
                continue
            for s in (udp, tcp):
                s.server.logger.log_recv = s.server.logger.log_send = lambda *a: None
                s.server.logger.log_request = s.server.logger.log_reply = lambda *a: None
                s.server.logger.log_truncated = s.server.logger.log_error = lambda *a: None
                s.server.logger.log_data = lambda *a: None
                s.start_thread()
            self._servers = [udp, tcp]
            self.port = port
            return self
        raise OSError("no free port for both UDP and TCP")

    def stop(self) -> None:
        """Stop both listeners."""
        for s in self._servers:
            s.stop()
            s.server.server_close()


def query(address: str, name: str, rtype: str, *, tcp: bool = False) -> DNSRecord:
    """Ask the server directly (a check of the fixture itself)."""
    host, port = address.rsplit(":", 1)
    packet = DNSRecord.question(name, rtype).send(host, int(port), tcp=tcp, timeout=2)
    return DNSRecord.parse(packet)


def free_udp_port() -> int:
    """A local UDP port nothing listens on (for timeouts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
