"""Input cleaning: domains and URLs in, registered domains out; bad lines reported, not fatal."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.errors import MissingInputError
from detector.inputs import (
    DomainEntry,
    DomainError,
    InputError,
    InvalidLine,
    _extractor,
    check_inputs,
    clean_domain,
    count_lines,
    read_domains,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("  Example.COM  ", "example.com"),
        ("https://www.example.com/pricing?x=1#top", "example.com"),
        ("http://shop.example.co.uk:8080/", "example.co.uk"),
        ("www.example.com.", "example.com"),
        ('"example.org"', "example.org"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("https://Bücher.DE/katalog", "xn--bcher-kva.de"),
        ("someone.github.io", "someone.github.io"),
        ("blog.shop.test", "shop.test"),
        ("//cdn.example.net/x.js", "example.net"),
    ],
    ids=["plain", "case-space", "url", "port-subdomain", "trailing-dot", "quoted", "idn", "idn-url",
         "private-suffix", "reserved-test", "scheme-relative"],
)
def test_clean_domain(raw: str, expected: str) -> None:
    assert clean_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("blog.example.com", "blog.example.com"), ("www.example.com", "example.com"),
     ("https://WWW.app.example.com/x", "app.example.com")],
    ids=["subdomain", "www-stripped", "www-stripped-before-subdomain"],
)
def test_keep_subdomains(raw: str, expected: str) -> None:
    assert clean_domain(raw, keep_subdomains=True) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("exa mple.com", "contains a space"),
        ("example", "no public suffix"),
        ("example.notatld", "no public suffix"),
        ("co.uk", "public suffix"),
        ("192.0.2.1", "IP address"),
        ("http://[2001:db8::1]/", "IP address"),
        ("ex_ample.com", "bad characters"),
        ("-example.com", "bad characters"),
        ("ftp://example.com", "ftp: URL"),
        ("https://", "no host name"),
        ("example.com:http", "not a domain name or URL"),
    ],
    ids=["space", "no-dot", "unknown-tld", "suffix-only", "ipv4", "ipv6", "underscore", "leading-dash",
         "ftp", "no-host", "bad-port"],
)
def test_invalid_domains(raw: str, reason: str) -> None:
    with pytest.raises(DomainError, match=reason):
        clean_domain(raw)


def test_ip_allowed_when_asked() -> None:
    assert clean_domain("192.0.2.1", allow_ip=True) == "192.0.2.1"


def test_no_network_for_the_suffix_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """tldextract must use its bundled list: any connection attempt fails this test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _extractor.cache_clear()
    assert clean_domain("news.bbc.co.uk") == "bbc.co.uk"


def test_text_file_lines_comments_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "domains.txt"
    f.write_text(
        "# accounts\n\nexample.com\nhttps://www.example.com/\nexa mple.com\nshop.test  # inline comment\n"
        "co.uk\nexample.org\n",
        encoding="utf-8",
    )
    got = list(read_domains([str(f)]))
    assert [(e.domain, e.line) for e in got if isinstance(e, DomainEntry)] == [
        ("example.com", 3), ("shop.test", 6), ("example.org", 8)]
    bad = [e for e in got if isinstance(e, InvalidLine)]
    assert [e.describe() for e in bad] == [
        f'{f} line 5: "exa mple.com" is not a domain name (it contains a space)',
        f'{f} line 7: "co.uk" is a public suffix, not a domain anyone registers',
    ]


def test_csv_with_website_column(tmp_path: Path) -> None:
    f = tmp_path / "accounts.csv"
    f.write_text(
        'Account Name,Website,Employees\n"Acme, Inc.",https://www.acme.com/about,50\n'
        "Globex,globex.co.uk,200\nInitech,,10\n\nHooli,not a site,5\n",
        encoding="utf-8",
    )
    got = list(read_domains([str(f)]))
    assert [(e.domain, e.line) for e in got if isinstance(e, DomainEntry)] == [
        ("acme.com", 2), ("globex.co.uk", 3)]
    assert [(e.line, e.reason) for e in got if isinstance(e, InvalidLine)] == [
        (4, "has an empty domain cell"), (6, "is not a domain name (it contains a space)")]


def test_tsv_and_explicit_column(tmp_path: Path) -> None:
    f = tmp_path / "accounts.tsv"
    f.write_text("name\thome\tother\nAcme\tacme.com\tx.com\n", encoding="utf-8")
    assert [e.domain for e in read_domains([str(f)], column="home") if isinstance(e, DomainEntry)] == ["acme.com"]
    assert [e.domain for e in read_domains([str(f)], column="3") if isinstance(e, DomainEntry)] == ["x.com"]


def test_csv_without_domain_column_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "accounts.csv"
    f.write_text("name,employees\nAcme,5\n", encoding="utf-8")
    with pytest.raises(InputError, match="no domain, website or url column.*--column"):
        check_inputs([str(f)])
    with pytest.raises(InputError, match='no column "web"; the header has name, employees'):
        check_inputs([str(f)], column="web")


def test_missing_file_is_a_missing_input_error(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match="no such file") as info:
        check_inputs([str(tmp_path / "nope.txt")])
    assert info.value.exit_code == 66
    with pytest.raises(MissingInputError, match="no such file"):
        count_lines([str(tmp_path / "nope.txt")])


def test_stdin_and_duplicates_across_files(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("example.com\n", encoding="utf-8")
    stdin = io.StringIO("www.example.com\nexample.net\n")
    got = [e.domain for e in read_domains([str(f), "-"], stdin=stdin) if isinstance(e, DomainEntry)]
    assert got == ["example.com", "example.net"]


def test_reading_is_lazy() -> None:
    """The first domains come out before the input ends: a huge list never sits in memory."""

    class Endless(io.TextIOBase):
        def __init__(self) -> None:
            self.n = 0

        def __iter__(self) -> Iterator[str]:
            return self

        def __next__(self) -> str:
            self.n += 1
            return f"site{self.n}.example\n"

    stream = Endless()
    gen = read_domains(["-"], stdin=stream)  # type: ignore[arg-type]
    first = [next(gen) for _ in range(3)]
    assert [e.domain for e in first] == ["site1.example", "site2.example", "site3.example"]  # type: ignore[union-attr]
    assert stream.n < 10


def test_count_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("a.com\nb.com\n", encoding="utf-8")
    assert count_lines([str(f), str(f)]) == 4
    assert count_lines(["-"]) is None


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("name,Website,country", None),
        ("Company Name\tCompany Domain\tEmployees", None),
        ("name;homepage_url;size", None),
        ("account,Web Site", None),
        ("a,b,c", "2"),
        ("Name,Site URL", "site url"),
    ],
    ids=["website", "tsv-company-domain", "semicolon-substring", "web-site", "number", "named"],
)
def test_crawl_input_and_accounts_import_pick_the_same_column(tmp_path: Path, header: str, column: str | None) -> None:
    """One column finder and one table reader serve `crawl FILE.csv` and `accounts import`."""
    from detector.store.accounts import read_accounts

    delim = "\t" if "\t" in header else (";" if ";" in header else ",")
    cells = ["x"] * len(header.split(delim))
    names = [h.strip() for h in header.split(delim)]
    target = names.index(next(n for n in names if any(w in n.lower() for w in ("domain", "site", "web", "url")))) \
        if column is None else (int(column) - 1 if column.isdigit() else [n.lower() for n in names].index(column))
    cells[target] = "www.acme.test"
    text = header + "\n" + delim.join(cells) + "\n"
    path = tmp_path / "accounts.txt"
    path.write_text(text, encoding="utf-8")
    crawled = [e.domain for e in read_domains([str(path)], column=column) if isinstance(e, DomainEntry)]
    rows, result = read_accounts(text, str(path), clean_domain, column)
    assert crawled == [r["domain"] for r in rows] == ["acme.test"]
    assert result.domain_column == names[target]


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n", "domain,name\n"], ids=["empty", "blank", "comment", "header-only"]
)
def test_crawl_of_an_input_without_domains_warns_and_writes_nothing(tmp_path: Path, text: str) -> None:
    from click.testing import CliRunner

    from detector.cli import cli

    listing = tmp_path / ("domains.csv" if "," in text else "domains.txt")
    listing.write_text(text, encoding="utf-8")
    db = tmp_path / "never.db"
    # --proxy to a closed local port: should anything be crawled, nothing leaves 127.0.0.1.
    result = CliRunner().invoke(cli, ["crawl", str(listing), "--db", str(db), "--proxy", "http://127.0.0.1:9", "--no-dns"])
    assert result.exit_code == 0, result.output
    assert "no domains" in result.output and "nothing was crawled" in result.output
    assert not db.exists()


def test_has_lines_stops_at_the_first_candidate(tmp_path: Path) -> None:
    from detector.inputs import has_lines

    listing = tmp_path / "d.txt"
    listing.write_text("# x\n\nnot a domain!\n", encoding="utf-8")
    assert has_lines([str(listing)]) and has_lines(["-"])
    listing.write_text("# x\n", encoding="utf-8")
    assert not has_lines([str(listing)])
