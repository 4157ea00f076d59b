"""Errors a person can act on: one line naming the file, the problem and the fix, and the same
sysexits-style exit status in every command (README "Exit status")."""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from detector.cli import cli
from detector.errors import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT
from detector.inputs import DomainEntry, read_domains, sniff_delimiter
from detector.store.store import open_database
from detector.textinput import sniff_encoding
from tests.conftest import ROOT
from tests.servers import rows, run_detector, start_proxy

CLOSED_PROXY = "http://127.0.0.1:9"  # nothing listens: a check that lets a crawl start stays local
EXAMPLE_RULES = ROOT / "examples" / "rules.yaml"
READ_ONLY = ("Error: {db}: the database is read-only for this user (SQLite: attempt to write a readonly "
             "database). Make the file and its folder writable (chmod u+w), or pick another --db; nothing was "
             "written.\n")


def invoke(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# ---------------------------------------------------------------------------- read-only database


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file read-only for this user: chmod, or for root (who ignores modes) chattr +i."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot make a file read-only as root here (chattr: {done.stderr.decode().strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def accounts_db(tmp_path: Path) -> Path:
    db = tmp_path / "ro.db"
    (tmp_path / "a.csv").write_text("domain,country\nalpha.test,US\n", encoding="utf-8")
    code, out = invoke("accounts", "import", str(tmp_path / "a.csv"), "--db", str(db))
    assert code == 0, out
    return db


@pytest.mark.parametrize(
    "args",
    [
        ["accounts", "import", "{tmp}/a.csv", "--db", "{db}"],
        ["crawl", "{tmp}/a.csv", "--db", "{db}", "--proxy", CLOSED_PROXY, "--no-dns"],
        ["refresh", "--db", "{db}", "--older-than", "0", "--proxy", CLOSED_PROXY, "--no-dns"],
        ["segment", "--rules", "{tmp}/rules.yaml", "--db", "{db}"],
        ["demo", "--db", "{db}"],
    ],
    ids=["accounts-import", "crawl", "refresh", "segment", "demo"],
)
def test_a_read_only_database_is_one_line_and_exit_73(accounts_db: Path, args: list[str]) -> None:
    tmp = accounts_db.parent
    (tmp / "rules.yaml").write_text("product:\n  name: X\n  competitors: [Klaviyo]\n", encoding="utf-8")
    before = rows(accounts_db, "select * from accounts")
    with read_only(accounts_db):
        code, out = invoke(*[a.format(tmp=tmp, db=accounts_db) for a in args])
    assert (code, out) == (EX_CANTCREAT, READ_ONLY.format(db=accounts_db))
    assert rows(accounts_db, "select * from accounts") == before
    assert rows(accounts_db, "select count(*) n from runs") == [{"n": 0}]


# ---------------------------------------------------------------------------- missing input files


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["crawl", "{tmp}/nope.txt", "--proxy", CLOSED_PROXY, "--no-dns"], "nope.txt"),
        (["refresh", "--domains", "{tmp}/nope.txt", "--proxy", CLOSED_PROXY, "--no-dns"], "nope.txt"),
        (["accounts", "import", "{tmp}/nope.csv"], "nope.csv"),
        (["segment", "--rules", "{tmp}/nope.yaml"], "nope.yaml"),
        (["detect", "--html", "{tmp}/nope.html"], "nope.html"),
        (["detect", "--html", "{tmp}/page.html", "--headers", "{tmp}/nope.txt"], "nope.txt"),
        (["detect", "--cases", "{tmp}/nope.jsonl"], "nope.jsonl"),
        (["detect", "--har", "{tmp}/nope.har"], "nope.har"),
    ],
    ids=["crawl", "refresh-domains", "accounts-import", "segment-rules", "detect-html", "detect-headers",
         "detect-cases", "detect-har"],
)
def test_a_missing_input_file_exits_66_everywhere(tmp_path: Path, args: list[str], missing: str) -> None:
    (tmp_path / "page.html").write_text("<html></html>", encoding="utf-8")
    db = tmp_path / "x.db"
    argv = [a.format(tmp=tmp_path) for a in args]
    if argv[0] not in ("detect",):
        argv += ["--db", str(db)]
    code, out = invoke(*argv)
    assert code == EX_NOINPUT, out
    first = out.splitlines()[0]
    assert first.startswith(f"Error: {tmp_path / missing}: no such file. Check the path; nothing was read.")
    assert "Traceback" not in out
    assert not db.exists() or rows(db, "select count(*) n from runs") == [{"n": 0}]


def test_a_missing_rules_file_points_to_the_shipped_example(tmp_path: Path) -> None:
    code, out = invoke("segment", "--rules", str(tmp_path / "rules.yaml"), "--db", str(tmp_path / "x.db"))
    assert code == EX_NOINPUT
    assert out == (f"Error: {tmp_path / 'rules.yaml'}: no such file. Check the path; nothing was read. "
                   f"A commented example ships with detector: {EXAMPLE_RULES} (copy it, then edit).\n")


# ---------------------------------------------------------------------------- encodings, binary input

LATIN1_CSV = "Company,Website,Country\nCafé Müller,cafe-muller.test,DE\nCrème Brûlée SA,creme.test,FR\n"


def test_a_latin1_accounts_csv_is_read_as_windows_1252_with_a_warning(tmp_path: Path) -> None:
    csv_path = tmp_path / "accounts.csv"
    csv_path.write_bytes(LATIN1_CSV.encode("cp1252"))
    db = tmp_path / "x.db"
    result = CliRunner().invoke(cli, ["accounts", "import", str(csv_path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"warning: {csv_path} is not UTF-8; read it as Windows-1252. Check accented names, "
                             "or save the file as UTF-8 to silence this warning.\n")
    assert rows(db, "select domain, company from accounts order by domain") == [
        {"domain": "cafe-muller.test", "company": "Café Müller"},
        {"domain": "creme.test", "company": "Crème Brûlée SA"},
    ]


def test_utf8_with_a_bom_and_utf16_need_no_warning(tmp_path: Path) -> None:
    for name, data in (("bom.csv", LATIN1_CSV.encode("utf-8-sig")), ("u16.csv", LATIN1_CSV.encode("utf-16"))):
        db = tmp_path / f"{name}.db"
        (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(cli, ["accounts", "import", str(tmp_path / name), "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        assert [r["company"] for r in rows(db, "select company from accounts order by domain")] == [
            "Café Müller", "Crème Brûlée SA"]


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
BINARY = ("Error: {path}: not a text file (it holds NUL bytes: an image, a spreadsheet, an archive?). "
          "Save it as CSV or plain text (UTF-8); nothing was read.\n")


@pytest.mark.parametrize(
    "command",
    [["accounts", "import", "{path}"], ["crawl", "{path}", "--proxy", CLOSED_PROXY, "--no-dns"],
     ["refresh", "--domains", "{path}", "--proxy", CLOSED_PROXY, "--no-dns"]],
    ids=["accounts-import", "crawl", "refresh-domains"],
)
def test_a_binary_domain_or_accounts_file_is_refused(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(PNG)
    db = tmp_path / "x.db"
    code, out = invoke(*[c.format(path=path) for c in command], "--db", str(db))
    assert (code, out) == (EX_DATAERR, BINARY.format(path=path))
    assert not db.exists() or rows(db, "select count(*) n from domains") == [{"n": 0}]


def test_binary_from_stdin_is_refused_too(tmp_path: Path) -> None:
    code, out = invoke("accounts", "import", "-", "--db", str(tmp_path / "x.db"), stdin=PNG)
    assert (code, out) == (EX_DATAERR, BINARY.format(path="<stdin>"))


def test_binary_cases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_bytes(PNG)
    code, out = invoke("detect", "--cases", str(path))
    assert code == EX_DATAERR
    assert out.startswith(f"Error: {path} line 1: not UTF-8 text (UnicodeDecodeError: ")
    assert out.endswith("--cases takes JSON Lines: one JSON object per line, UTF-8, plain or gzip-compressed; "
                        "nothing was read past this line.\n")


@pytest.mark.parametrize("bad", [b"\xff\xfe broken\n", b"x\x00y\n"])
@pytest.mark.parametrize("compress", [False, True])
def test_a_bad_line_of_cases_is_named_by_its_number(tmp_path: Path, bad: bytes, compress: bool) -> None:
    good = b'{"id": "a", "url": "https://a.example/", "html": "<p>x</p>"}\n'
    data = good * 3 + bad + good
    path = tmp_path / ("cases.jsonl.gz" if compress else "cases.jsonl")
    path.write_bytes(gzip.compress(data) if compress else data)
    code, out = invoke("detect", "--cases", str(path), "--nl")
    assert code == EX_DATAERR
    assert out.count('"id": "a"') == 3  # the lines before it were read
    assert f"Error: {path} line 4: not UTF-8 text" in out, out


def test_control_characters_without_nul_are_binary_too() -> None:
    with pytest.raises(Exception, match="control characters"):
        sniff_encoding(bytes(range(1, 32)) * 20, "x.bin")


# ---------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize(
    ("first", "path", "expected"),
    [
        ("Company;Website;Country", "export.csv", ";"),
        ("Company\tWebsite", "export.csv", "\t"),
        ("Company,Website", "export.txt", ","),
        ('"Acme; Inc",Website', "export.csv", ","),
        ('"Acme, Inc";Website', "export.csv", ";"),
        ("Website", "export.csv", ","),
        ("Website", "export.tsv", "\t"),
        ("acme.test", "domains.txt", None),
    ],
    ids=["semicolon-csv", "tab-in-csv", "comma-txt", "quoted-semicolon", "quoted-comma", "one-column-csv",
         "one-column-tsv", "plain-list"],
)
def test_sniff_delimiter(first: str, path: str, expected: str | None) -> None:
    assert sniff_delimiter(first, path) == expected


EUROPEAN = "Firma;Website;Land\nAcme Großhandel GmbH;https://www.acme-semi.test/;DE\nBeta SARL;beta-semi.test;FR\n"
TABBED = "Firma\tWebsite\tLand\nGamma AB\tgamma-tab.test\tSE\n"


def test_semicolon_and_tab_files_are_read_by_the_crawl_reader(tmp_path: Path) -> None:
    (tmp_path / "eu.csv").write_text(EUROPEAN, encoding="utf-8")
    (tmp_path / "tab.txt").write_text(TABBED, encoding="utf-8")
    found = [e.domain for e in read_domains([str(tmp_path / "eu.csv"), str(tmp_path / "tab.txt")])
             if isinstance(e, DomainEntry)]
    assert found == ["acme-semi.test", "beta-semi.test", "gamma-tab.test"]


def test_semicolon_and_tab_accounts_import(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    for name, text in (("eu.csv", EUROPEAN), ("tab.txt", TABBED)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        code, out = invoke("accounts", "import", str(tmp_path / name), "--db", str(db))
        assert code == 0, out
    assert rows(db, "select domain, firma, land from accounts order by domain") == [
        {"domain": "acme-semi.test", "firma": "Acme Großhandel GmbH", "land": "DE"},
        {"domain": "beta-semi.test", "firma": "Beta SARL", "land": "FR"},
        {"domain": "gamma-tab.test", "firma": "Gamma AB", "land": "SE"},
    ]


def test_a_semicolon_csv_crawls_its_domains(tmp_path: Path) -> None:
    """The whole path, through the CLI in a subprocess and a local proxy serving the sites."""
    from detector.demo.vhosts import Route, Site

    page = b"<html><head><meta name='generator' content='WordPress 6.4'></head><body>hi</body></html>"
    sites = {name: Site(name, {"/": Route(200, (("Content-Type", "text/html"),), page)})
             for name in ("acme-semi.test", "beta-semi.test")}
    (tmp_path / "eu.csv").write_bytes(EUROPEAN.encode("cp1252"))
    db = tmp_path / "c.db"
    proxy = start_proxy(sites)
    try:
        run = run_detector(["crawl", str(tmp_path / "eu.csv"), "--db", str(db), "--proxy", proxy.url, "--no-dns", "--pages", "0",
                            "--timeout", "5", "--retries", "0", "--workers", "0"])
    finally:
        proxy.stop()
    assert run.code == 0, run.err
    assert "is not UTF-8; read it as Windows-1252" in run.err
    assert rows(db, "select domain, status from scans order by domain") == [
        {"domain": "acme-semi.test", "status": "ok"}, {"domain": "beta-semi.test", "status": "ok"}]


# ---------------------------------------------------------------------------- option ranges


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["detect", "--html", "{page}", "--min-confidence", "101"],
         "Invalid value for '--min-confidence': 101 is not in the range 0<=x<=100."),
        (["detect", "--html", "{page}", "--min-confidence", "-1"],
         "Invalid value for '--min-confidence': -1 is not in the range 0<=x<=100."),
        (["detect", "https://x.test/", "--timeout", "0"],
         "Invalid value for '--timeout': 0.0 is not in the range 0.1<=x<=600."),
        (["crawl", "{page}", "--max-size", "0"],
         "Invalid value for '--max-size': \"0\" is out of range; give a size from 1k to 1GB, like 5MB"),
        (["crawl", "{page}", "--timeout", "9999"],
         "Invalid value for '--timeout': 9999.0 is not in the range 0.1<=x<=600."),
        (["crawl", "{page}", "--pages", "21"], "Invalid value for '--pages': 21 is not in the range 0<=x<=20."),
        (["refresh", "--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1."),
        (["demo", "--workers", "65"], "Invalid value for '--workers': 65 is not in the range 0<=x<=64."),
    ],
    ids=["min-confidence-101", "min-confidence-negative", "detect-timeout-0", "max-size-0", "crawl-timeout",
         "pages", "refresh-limit", "demo-workers"],
)
def test_numeric_options_are_bounded(tmp_path: Path, args: list[str], message: str) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html></html>", encoding="utf-8")
    code, out = invoke(*[a.format(page=page) for a in args], *(["--db", str(tmp_path / "x.db")]
                                                               if args[0] != "detect" else []))
    assert code == 2
    assert out.splitlines()[-1] == f"Error: {message}"
    assert not (tmp_path / "x.db").exists()


def test_exit_codes_are_the_readmes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ("| 65 |", "| 66 |", "| 73 |", "| 75 |"):
        assert code in readme


def test_accounts_on_a_database_created_by_another_tool(tmp_path: Path) -> None:
    """Not an error case: a database someone else made is migrated, never refused."""
    db = tmp_path / "other.db"
    sqlite_utils.Database(db)["notes"].insert({"text": "mine"})
    (tmp_path / "a.csv").write_text("domain\nalpha.test\n", encoding="utf-8")
    code, out = invoke("accounts", "import", str(tmp_path / "a.csv"), "--db", str(db))
    assert code == 0, out
    assert open_database(db)["notes"].count == 1
