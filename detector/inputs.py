"""Clean and validate input domains: text or CSV/TSV lists in, registered domains out.

Normalisation uses tldextract with its *bundled* public suffix list, so reading a domain list
never touches the network.  Reserved names (``.test``, ``.example``, ``.invalid``; RFC 2606)
count as suffixes so fixture and demo sites can use them.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import IO
from urllib.parse import urlsplit

import tldextract

from detector.errors import DetectorError
from detector.textinput import check_readable, open_text

#: Column names, in order of preference, that hold a website in a CSV/TSV export.
#: Headers (as :func:`column_name` spells them) taken for the website column, in this order.
DOMAIN_COLUMNS = ("domain", "website", "url", "web_site", "homepage", "company_domain", "site", "web")
RESERVED_SUFFIXES = ("test", "example", "invalid")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainError(DetectorError):
    """A value is not a domain name we can crawl; the message says why."""


class InputError(DetectorError):
    """A domain list cannot be read (missing file, no usable column...)."""


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """A valid, normalised domain and where it came from."""

    domain: str
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line that holds no crawlable domain, with the reason."""

    source: str
    line: int
    text: str
    reason: str

    def describe(self) -> str:
        """``domains.txt line 14: "exa mple.com" is not a domain name``."""
        return f'{self.source} line {self.line}: "{self.text}" {self.reason}'


@lru_cache(maxsize=2)
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() and cache_dir=None: the snapshot shipped inside tldextract, no network.
    # Private suffixes (github.io, myshopify.com) are on, so each such site is its own account.
    return tldextract.TLDExtract(
        suffix_list_urls=(),
        cache_dir=None,
        include_psl_private_domains=True,
        extra_suffixes=RESERVED_SUFFIXES,
    )


@lru_cache(maxsize=4096)
def registered_domain(host: str) -> str:
    """The registered domain of a host name, or ``""`` when it has none.

    >>> registered_domain("shop.example.co.uk")
    'example.co.uk'
    """
    ext = _extractor()(host)
    if not ext.suffix or not ext.domain:
        return ""
    return f"{ext.domain}.{ext.suffix}"


def clean_domain(value: str, *, keep_subdomains: bool = False, allow_ip: bool = False) -> str:
    """Normalise a domain or URL to the domain to crawl; raise DomainError when impossible.

    >>> clean_domain("HTTPS://www.Example.COM:8443/pricing?x=1")
    'example.com'
    >>> clean_domain("blog.example.com", keep_subdomains=True)
    'blog.example.com'
    >>> clean_domain("bücher.de")
    'xn--bcher-kva.de'
    """
    text = value.strip().strip("\"'").strip()
    if not text:
        raise DomainError("is empty")
    if any(c.isspace() for c in text):
        raise DomainError("is not a domain name (it contains a space)")
    candidate = text if "://" in text or text.startswith("//") else "//" + text
    try:
        parts = urlsplit(candidate)
        host = parts.hostname or ""
        _ = parts.port  # a bad port ("example.com:http") is a bad value
    except ValueError:
        raise DomainError("is not a domain name or URL") from None
    if parts.scheme and parts.scheme not in ("http", "https"):
        raise DomainError(f"is a {parts.scheme}: URL, not a website")
    host = host.rstrip(".")
    if not host:
        raise DomainError("has no host name")
    if _is_ip(host):
        if allow_ip:
            return host
        raise DomainError("is an IP address, not a domain name (use --allow-ip to crawl it)")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise DomainError("is not a valid internationalised domain name") from None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise DomainError("is not a domain name (bad characters)")
    if len(labels) < 2:
        raise DomainError("has no public suffix (like .com or .co.uk)")
    ext = _extractor()(host)
    if not ext.suffix:
        raise DomainError(f'has no public suffix: ".{labels[-1]}" is not a top-level domain')
    if not ext.domain:
        raise DomainError("is a public suffix, not a domain anyone registers")
    if keep_subdomains:
        return host[4:] if host.startswith("www.") and host.count(".") >= 2 and ext.subdomain else host
    return f"{ext.domain}.{ext.suffix}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _open(path: str, stdin: IO[str] | None) -> IO[str]:
    """A domain list as text: UTF-8, else Windows-1252 (see :mod:`detector.textinput`); binary refused."""
    if path == "-":
        return stdin if stdin is not None else sys.stdin
    return open_text(path, newline="")[0]


def column_name(header: str) -> str:
    """A CSV header as a snake_case column name (how crawl input and accounts name columns).

    >>> column_name(" Company Name "), column_name("Employees (#)"), column_name("ARR $")
    ('company_name', 'employees', 'arr')
    """
    name = re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")
    if name and name[0].isdigit():
        name = "c_" + name
    return name


def find_domain_column(header: Sequence[str], column: str | None = None) -> int | None:
    """The index of the column holding the website, or None when there is none.

    ``column`` names it (any case or spelling of the header, or a 1-based number); otherwise
    the first header named like domain/website/url, then any header containing one of those.

    >>> find_domain_column(["Name", "Web Site", "Country"]), find_domain_column(["a", "b"], "2")
    (1, 1)
    """
    names = [column_name(h) for h in header]
    if column is not None:
        wanted = column_name(column)
        if wanted and wanted in names:
            return names.index(wanted)
        if column.strip().isdigit() and 1 <= int(column) <= len(names):
            return int(column) - 1
        return None
    for wanted in DOMAIN_COLUMNS:
        if wanted in names:
            return names.index(wanted)
    for i, name in enumerate(names):
        if any(w in name for w in ("domain", "website", "url")):
            return i
    return None


def sniff_delimiter(first_line: str, path: str) -> str | None:
    r"""The delimiter of a table by its header line (then its file name); None for a plain list.

    The most frequent of tab, comma and semicolon outside quotes wins, so a ``.csv`` that Excel
    saved with semicolons (European locales) is read as such.

    >>> sniff_delimiter("Company;Website;Country", "a.csv"), sniff_delimiter("a\tb", "x.txt")
    (';', '\t')
    >>> sniff_delimiter('"Acme, Inc";acme.com', "a.csv"), sniff_delimiter("acme.com", "a.txt")
    (';', None)
    """
    outside = re.sub(r'"[^"]*"', "", first_line)
    counts = {delim: outside.count(delim) for delim in ("\t", ",", ";")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best]:
        return best
    lower = path.lower()
    if lower.endswith(".tsv"):
        return "\t"
    if lower.endswith(".csv"):
        return ","
    return None


def _pick_column(header: Sequence[str], column: str | None, source: str) -> int:
    idx = find_domain_column(header, column)
    if idx is not None:
        return idx
    if column is not None:
        raise InputError(
            f'{source}: no column "{column}"; the header has {", ".join(header)}. '
            "Give --column one of those names (or a 1-based number)."
        )
    raise InputError(
        f"{source}: no domain, website or url column in the header ({', '.join(header)}). "
        "Name the column with --column."
    )


def _iter_values(path: str, column: str | None, stdin: IO[str] | None) -> Iterator[tuple[int, str]]:
    """(line number, raw value) for each candidate line of one file, lazily."""
    f = _open(path, stdin)
    try:
        first = ""
        first_no = 0
        buffered: list[str] = []
        for line in f:
            buffered.append(line)
            if line.strip() and not line.lstrip().startswith("#"):
                first = line
                first_no = len(buffered)
                break
        delim = sniff_delimiter(first, path) if first else None
        if delim is None and column is None:
            for n, line in enumerate(_chain(buffered, f), 1):
                text = line.split("#", 1)[0].strip() if "#" in line else line.strip()
                if text:
                    yield n, text
            return
        if delim is None:
            delim = ","
        reader = csv.reader(_chain(buffered[first_no - 1 :], f) if first else iter(()), delimiter=delim)
        try:
            header = next(reader)
        except StopIteration:
            return
        idx = _pick_column(header, column, path)
        offset = first_no - 1
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            n = reader.line_num + offset
            value = row[idx].strip() if idx < len(row) else ""
            if value.startswith("#"):
                continue
            yield n, value
    finally:
        if f is not stdin and f is not sys.stdin:
            f.close()


def _chain(first: list[str], rest: Iterable[str]) -> Iterator[str]:
    yield from first
    yield from rest


def has_lines(paths: Sequence[str], column: str | None = None) -> bool:
    """True when the files hold at least one candidate line (a domain, or a line to report).

    Blank lines, comments and a lone CSV header are no candidates.  Reads only up to the first
    candidate; never reads stdin (``-`` counts as having lines).
    """
    for path in paths:
        if path == "-":
            return True
        for _ in _iter_values(path, column, None):
            return True
    return False


def read_domains(
    paths: Sequence[str],
    *,
    column: str | None = None,
    keep_subdomains: bool = False,
    allow_ip: bool = False,
    stdin: IO[str] | None = None,
) -> Iterator[DomainEntry | InvalidLine]:
    """Valid domains (first occurrence only) and invalid lines from files, lazily, in order.

    A CSV/TSV row with an empty domain cell is reported as invalid so the count adds up.
    """
    seen: set[str] = set()
    for path in paths:
        source = "<stdin>" if path == "-" else path
        for n, value in _iter_values(path, column, stdin):
            if not value:
                yield InvalidLine(source, n, value, "has an empty domain cell")
                continue
            try:
                domain = clean_domain(value, keep_subdomains=keep_subdomains, allow_ip=allow_ip)
            except DomainError as exc:
                yield InvalidLine(source, n, value[:200], str(exc))
                continue
            if domain in seen:
                continue
            seen.add(domain)
            yield DomainEntry(domain, source, n)


def count_lines(paths: Sequence[str]) -> int | None:
    """Number of lines in the files (a progress total), or None when reading stdin."""
    if "-" in paths:
        return None
    total = 0
    for path in paths:
        p = check_readable(path)
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                total += block.count(b"\n")
    return total


__all__ = [
    "DomainEntry",
    "DomainError",
    "InputError",
    "InvalidLine",
    "check_inputs",
    "clean_domain",
    "count_lines",
    "read_domains",
    "registered_domain",
]


def check_inputs(paths: Sequence[str], column: str | None = None) -> list[str]:
    """Fail early on a missing (MissingInputError) or binary (BinaryInputError) file, or a CSV
    without a usable column (InputError); return the warnings to show (a file read as Windows-1252)."""
    warnings: list[str] = []
    for path in paths:
        if path == "-":
            continue
        f, encoding = open_text(path, newline="")
        f.close()
        if encoding.warning:
            warnings.append(encoding.warning)
        for _ in _iter_values(path, column, None):
            break
    return warnings
