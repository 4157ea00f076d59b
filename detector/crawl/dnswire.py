"""DNS messages (RFC 1035) for the few questions the crawl asks: build a query, read an answer.

Only what the DNS tier needs: one question, records of types MX, TXT, NS, CNAME and SOA read
into presentation text, names decompressed.  Pure code (stdlib), so every part can be tested
on bytes.  The transport is :class:`detector.crawl.dnsclient.DnsClient`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from detector.errors import DetectorError

#: Record type numbers (RFC 1035 3.2.2).
TYPES = {"NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
#: Response codes the tier tells apart (RFC 1035 4.1.1).
RCODE_NOERROR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 2, 3, 5
_HEADER = struct.Struct(">HHHHHH")
_RR = struct.Struct(">HHIH")


class WireError(DetectorError):
    """A DNS message that cannot be read (cut short, a compression loop, a bad label)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its id, flags that matter, the question it answers and the records read."""

    id: int
    rcode: int
    truncated: bool
    qname: str
    qtype: int
    records: tuple[tuple[int, str], ...]  # (type, value in presentation text)

    def values(self, rtype: int) -> list[str]:
        """The values of the records of one type, in answer order."""
        return [v for t, v in self.records if t == rtype]


def encode_name(name: str) -> bytes:
    """A name in wire format (labels, then the root).

    >>> encode_name("www.Acme.test")
    b'\\x03www\\x04Acme\\x04test\\x00'
    """
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise WireError(f'"{name}": a DNS label must have 1 to 63 characters')
        out += bytes([len(raw)]) + raw
    out.append(0)
    if len(out) > 255:
        raise WireError(f'"{name}": a DNS name has at most 255 bytes')
    return bytes(out)


def encode_query(query_id: int, name: str, rtype: str) -> bytes:
    """A standard query with recursion desired.

    >>> encode_query(0x1234, "acme.test", "MX").hex()
    '1234010000010000000000000461636d65047465737400000f0001'
    """
    header = _HEADER.pack(query_id, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack(">HH", TYPES[rtype], 1)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` (following compression pointers) and the offset after it.

    >>> read_name(b"\\x04acme\\x04test\\x00\\x03www\\xc0\\x00", 11)
    ('www.acme.test', 17)
    """
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise WireError("a name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("a compression pointer is cut short")
            if end < 0:
                end = offset + 2
            jumps += 1
            if jumps > 64:
                raise WireError("compression pointers loop")
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise WireError(f"unknown label type {length:#x}")
        offset += 1
        if length == 0:
            break
        labels.append(data[offset : offset + length].decode("ascii", "replace").lower())
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def _rdata(data: bytes, rtype: int, start: int, length: int) -> str:
    """One record's data as presentation text (names without the trailing dot)."""
    if rtype in (TYPES["NS"], TYPES["CNAME"]):
        return read_name(data, start)[0]
    if rtype == TYPES["MX"]:
        return read_name(data, start + 2)[0]  # the exchange; the preference is not evidence
    if rtype == TYPES["TXT"]:
        strings, pos, stop = [], start, start + length
        while pos < stop:
            n = data[pos]
            strings.append(data[pos + 1 : pos + 1 + n])
            pos += 1 + n
        return b"".join(strings).decode("utf-8", "replace")  # one record, its strings joined
    if rtype == TYPES["SOA"]:
        mname, pos = read_name(data, start)
        rname, pos = read_name(data, pos)
        numbers = struct.unpack_from(">IIIII", data, pos)
        return " ".join([mname, rname, *map(str, numbers)])
    return data[start : start + length].hex()


def decode_answer(data: bytes) -> Answer:
    """Read a response: header, the question, then the answer section's records we know.

    Raises :class:`WireError` for a message that cannot be read.
    """
    try:
        qid, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(data, 0)
        offset = _HEADER.size
        qname, qtype = "", 0
        for _ in range(qdcount):
            qname, offset = read_name(data, offset)
            qtype = struct.unpack_from(">H", data, offset)[0]
            offset += 4
        records: list[tuple[int, str]] = []
        for _ in range(ancount):
            _owner, offset = read_name(data, offset)
            rtype, _rclass, _ttl, length = _RR.unpack_from(data, offset)
            offset += _RR.size
            if offset + length > len(data):
                raise WireError("a record runs past the end of the message")
            if rtype in TYPE_NAMES:
                records.append((rtype, _rdata(data, rtype, offset, length)))
            offset += length
    except (struct.error, IndexError) as exc:
        raise WireError(f"a DNS message cut short ({exc})") from None
    return Answer(qid, flags & 0x000F, bool(flags & 0x0200), qname, qtype, tuple(records))
