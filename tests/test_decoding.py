"""Decoding never raises: declared charsets that are no text encoding fall back, the page is still detected."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.engine.match import Engine
from detector.engine.page import Page, decode_body, text_encoding
from tests.conftest import TEST_SIGNATURES

#: Labels Python's codecs.lookup may accept (or not) that are no charset a page is written in.
NOT_TEXT = ["hex", "base64", "rot13", "zlib", "bz2", "uu", "quopri", "undefined", "unicode_escape",
            "raw_unicode_escape", "idna", "punycode", "utf-7", "replacement", "x-user-defined", "bogus",
            "x-no-such-charset", "utf-8x", "hex_codec", "base64_codec", "zip"]

GENERATOR = '<meta name="generator" content="PressCMS 6.1">'


def _body(meta_charset: str | None, text: bytes) -> bytes:
    meta = f'<meta charset="{meta_charset}">'.encode() if meta_charset else b""
    return b"<html><head>" + meta + GENERATOR.encode() + b"</head><body><p>" + text + b"</p></body></html>"


@pytest.mark.parametrize("charset", NOT_TEXT)
@pytest.mark.parametrize("where", ["header", "meta"])
@pytest.mark.parametrize(("text", "expected"), [("café".encode(), "café"), ("café".encode("cp1252"), "café")],
                         ids=["utf-8-body", "windows-1252-body"])
def test_unusable_charset_falls_back(charset: str, where: str, text: bytes, expected: str, test_engine: Engine) -> None:
    headers = {"Content-Type": f"text/html; charset={charset}"} if where == "header" else {}
    body = _body(charset if where == "meta" else None, text)
    page = Page.from_http("https://a.example/", headers=headers, body=body)  # must not raise
    assert f"<p>{expected}</p>" in page.html
    found = {d.technology: d for d in test_engine.detect(page)}
    assert found["PressCMS"].version == "6.1"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"), ("UTF8", "utf-8"), (" latin1 ", "cp1252"), ("iso-8859-1", "cp1252"), ("ascii", "cp1252"),
        ("shift_jis", "cp932"), ("gb2312", "gb18030"), ("euc-kr", "cp949"), ("koi8-r", "koi8-r"),
        ("cp437", "cp437"),  # not a WHATWG label, but a real text encoding Python knows
        ("hex", None), ("base64", None), ("undefined", None), ("", None), (None, None),
    ],
)
def test_text_encoding_labels(label: str | None, codec: str | None) -> None:
    assert text_encoding(label) == codec


def test_declared_charsets_still_win() -> None:
    # a header charset wins over the meta; a usable meta wins over the UTF-8 guess
    body = '<meta charset="koi8-r"><p>привет</p>'.encode("koi8-r")
    assert "привет" in decode_body(body)
    assert "привет" in decode_body(body, "text/html; charset=hex")  # header unusable: the meta is used
    assert "привет" not in decode_body(body, "text/html; charset=windows-1252")
    # a meta declaring UTF-16 means UTF-8 (an ASCII scan found it); a header may say UTF-16
    assert decode_body('<meta charset="utf-16"><p>é</p>'.encode()).endswith("<p>é</p>")
    assert decode_body("<p>é</p>".encode("utf-16-le"), "text/html; charset=utf-16le") == "<p>é</p>"
    # bytes a declared charset cannot decode become U+FFFD, nothing raises
    assert decode_body(b"<p>\xff\xfe\xfd</p>", "text/html; charset=utf-8") == "<p>\ufffd\ufffd\ufffd</p>"


@pytest.mark.parametrize("charset", ["hex", "base64", "rot13", "zlib", "undefined", "bogus"])
@pytest.mark.parametrize("where", ["header", "meta"])
def test_cli_detect_html_with_unusable_charset(charset: str, where: str, tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_bytes(_body(charset if where == "meta" else None, "café".encode()))
    args = ["detect", "--signatures", str(TEST_SIGNATURES), "--html", str(page), "--json"]
    if where == "header":
        (tmp_path / "h.txt").write_text(f"HTTP/1.1 200 OK\nContent-Type: text/html; charset={charset}\n")
        args += ["--headers", str(tmp_path / "h.txt")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert res.exception is None
    assert '"PressCMS"' in res.output and "Traceback" not in res.output
