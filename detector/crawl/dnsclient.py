"""A small asyncio DNS stub client: one connected UDP socket per server, TCP for truncated answers.

It runs on the event loop Scrapy's asyncio reactor drives: sending a query is one datagram,
an answer is matched to its query by id and question, nothing blocks and no thread is used.
One socket serves every query (random 16-bit ids; the socket is connected, so only the
server's datagrams arrive), which keeps a lookup to a few tens of microseconds of CPU: a
general resolver library opening a socket and building objects per query costs ten times
that, which a crawl doing six lookups per site feels (see bench/crawl.py --compare dns).

Outcomes are values, never exceptions: records, NXDOMAIN, no data, SERVFAIL (or REFUSED),
timeout, or another error with its message.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detector.crawl.dnswire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    TYPES,
    Answer,
    WireError,
    decode_answer,
    encode_query,
)

#: Seconds before a UDP query is first sent again; each later wait doubles (within the timeout).
RETRY_SECONDS = 1.0
#: Queries in flight per server at most: more wait their turn.  A burst of lookups (every
#: domain in the scheduler's queue at once) would otherwise outrun the server, and each resend
#: of an unanswered query would only add to its backlog.
MAX_IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one question ended: its values, or an error ``kind: message`` ("" when it has values)."""

    values: tuple[str, ...] = ()
    error: str = ""


def system_nameservers(path: str | Path = "/etc/resolv.conf") -> list[str]:
    """The ``nameserver`` addresses of resolv.conf, in order ([] when there are none)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    servers = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1].split("%", 1)[0])
    return servers


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, client: DnsClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:
        self.client._failed_all(exc)


class DnsClient:
    """Ask one DNS server (``host``, ``port``) questions over UDP, and over TCP when truncated."""

    def __init__(self, host: str, port: int = 53, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Future[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[Answer], str, int]] = {}
        self._slots: asyncio.Semaphore | None = None
        self.tcp_queries = 0

    async def ask(self, name: str, rtype: str) -> Outcome:
        """One question; the outcome says what DNS answered or why it did not."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        try:
            async with self._slots:
                answer = await self._ask_udp(name, rtype)
            if answer.truncated:
                self.tcp_queries += 1
                answer = await asyncio.wait_for(self._ask_tcp(name, rtype), self.timeout)
        except asyncio.TimeoutError:
            return Outcome(error=f"timeout: no answer for {name} {rtype} within {self.timeout:g} s")
        except (OSError, WireError, asyncio.IncompleteReadError) as exc:
            return Outcome(error=f"other: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        return _outcome(answer, name, rtype)

    async def _open(self) -> None:
        if self._transport is not None:
            return
        if self._opening is None:
            loop = asyncio.get_running_loop()
            self._opening = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), remote_addr=(self.host, self.port))
            except BaseException as exc:
                self._opening.set_exception(exc)
                self._opening.exception()  # retrieved: the waiters below raise it
                self._opening = None
                raise
            self._transport = transport
            self._opening.set_result(None)
        else:
            await asyncio.shield(self._opening)

    async def _ask_udp(self, name: str, rtype: str) -> Answer:
        await self._open()
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        qid = secrets.randbelow(65536)
        while qid in self._pending:
            qid = secrets.randbelow(65536)
        future: asyncio.Future[Answer] = loop.create_future()
        self._pending[qid] = (future, name.rstrip(".").lower(), TYPES[rtype])
        packet = encode_query(qid, name, rtype)
        transport = self._transport
        timers: list[asyncio.TimerHandle] = []

        def resend(wait: float) -> None:  # lost on the way: ask again, waiting longer each time
            if not future.done():
                transport.sendto(packet)
                timers.append(loop.call_later(wait * 2, resend, wait * 2))

        def expire() -> None:
            if not future.done():
                future.set_exception(asyncio.TimeoutError())

        transport.sendto(packet)
        timers += [loop.call_later(RETRY_SECONDS, resend, RETRY_SECONDS), loop.call_later(self.timeout, expire)]
        try:
            return await future
        finally:
            for timer in timers:
                timer.cancel()
            self._pending.pop(qid, None)

    def _received(self, data: bytes) -> None:
        try:
            answer = decode_answer(data)
        except WireError:
            return  # unreadable: the query waits for a good one or times out
        waiting = self._pending.get(answer.id)
        if waiting is None:
            return
        future, qname, qtype = waiting
        if answer.qname != qname or answer.qtype != qtype:
            return  # not the answer to this question (a late or forged datagram)
        if not future.done():
            future.set_result(answer)

    def _failed_all(self, exc: Exception) -> None:
        """An ICMP error (port unreachable...) on the socket: every waiting query fails."""
        for future, _, _ in list(self._pending.values()):
            if not future.done():
                future.set_exception(OSError(f"{self.host}:{self.port}: {exc}"))

    async def _ask_tcp(self, name: str, rtype: str) -> Answer:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            qid = secrets.randbelow(65536)
            packet = encode_query(qid, name, rtype)
            writer.write(struct.pack(">H", len(packet)) + packet)
            await writer.drain()
            size = struct.unpack(">H", await reader.readexactly(2))[0]
            answer = decode_answer(await reader.readexactly(size))
        finally:
            writer.close()
        if answer.id != qid:
            raise WireError("the TCP answer has another query's id")
        return answer

    def close(self) -> None:
        """Close the UDP socket; queries still waiting fail."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._failed_all(ConnectionAbortedError("the DNS client was closed"))


def _outcome(answer: Answer, name: str, rtype: str) -> Outcome:
    if answer.rcode == RCODE_NXDOMAIN:
        return Outcome(error=f"nxdomain: {name} does not exist")
    if answer.rcode in (RCODE_SERVFAIL, RCODE_REFUSED):
        what = "SERVFAIL" if answer.rcode == RCODE_SERVFAIL else "REFUSED"
        return Outcome(error=f"servfail: the server answered {what} for {name} {rtype}")
    if answer.rcode != RCODE_NOERROR:
        return Outcome(error=f"other: response code {answer.rcode} for {name} {rtype}")
    values = tuple(answer.values(TYPES[rtype]))
    if not values:
        return Outcome(error=f"no_data: {name} has no {rtype} record")
    return Outcome(values)


def first_server(servers: Sequence[str]) -> str | None:
    """The first usable server of a list (IPv4 or IPv6 literal), or None."""
    import ipaddress

    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            continue
        return s
    return None
