"""Reading text files people export: UTF-8 (with or without a BOM), else Windows-1252 with a
warning; binary files refused with a message; a missing file named.  Shared by every input.

Spreadsheets saved as "CSV" in Excel on Windows are Windows-1252 (Latin-1 plus curly quotes
and the euro sign), so that is the fallback; UTF-16 with a BOM ("Unicode text") is read too.
"""

from __future__ import annotations

import codecs
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from detector.errors import BinaryInputError, MissingInputError

#: How much of a file decides its encoding (and whether it is text at all).
HEAD_BYTES = 1 << 16
#: Control characters (other than tab, newlines, form feed) allowed per byte of text.
_MAX_CONTROL_RATIO = 0.01
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1a")


@dataclass(frozen=True, slots=True)
class TextEncoding:
    """How a file is decoded, and the warning to show when it is not UTF-8."""

    encoding: str
    warning: str | None = None


def sniff_encoding(head: bytes, source: str) -> TextEncoding:
    """The encoding of a file from its first bytes; raise BinaryInputError for a binary file.

    >>> sniff_encoding("Café,x\\n".encode(), "a.csv").encoding
    'utf-8-sig'
    >>> sniff_encoding("Café,x\\n".encode("cp1252"), "a.csv").encoding
    'cp1252'
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return TextEncoding("utf-16")
    if b"\0" in head:
        raise BinaryInputError(f"{source}: not a text file (it holds NUL bytes: an image, a spreadsheet, an "
                               "archive?). Save it as CSV or plain text (UTF-8); nothing was read.")
    controls = sum(1 for b in head if (b < 0x20 and b not in _TEXT_CONTROLS) or b == 0x7F)
    if head and controls / len(head) > _MAX_CONTROL_RATIO:
        raise BinaryInputError(f"{source}: not a text file ({controls} control characters in its first "
                               f"{len(head):,} bytes). Save it as CSV or plain text (UTF-8); nothing was read.")
    try:
        head.decode("utf-8")
        return TextEncoding("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(head) >= HEAD_BYTES:
            return TextEncoding("utf-8-sig")  # a character cut by the end of the sample
    for encoding, label in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            head.decode(encoding)
        except UnicodeDecodeError:
            continue
        return TextEncoding(encoding, f"warning: {source} is not UTF-8; read it as {label}. Check accented "
                                      "names, or save the file as UTF-8 to silence this warning.")
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def check_readable(path: str | Path, what: str = "file") -> Path:
    """The path of an existing, readable file; MissingInputError naming it otherwise."""
    p = Path(path)
    if p.is_dir():
        raise MissingInputError(f"{path}: is a folder, not a {what}. Check the path; nothing was read.")
    if not p.is_file():
        raise MissingInputError(f"{path}: no such file. Check the path; nothing was read.")
    return p


def open_text(path: str | Path, *, stdin: BinaryIO | None = None, newline: str | None = None) -> tuple[IO[str], TextEncoding]:
    """A text stream of a file (``-``: standard input) in its sniffed encoding, and that encoding.

    Undecodable bytes past the sniffed head become U+FFFD; nothing raises mid-stream.
    """
    if str(path) == "-":
        raw: BinaryIO = stdin if stdin is not None else sys.stdin.buffer
        peek = getattr(raw, "peek", None)
        if peek is not None:
            head = bytes(peek(HEAD_BYTES))[:HEAD_BYTES]
            stream: BinaryIO = raw
        else:  # not seekable, no peek (a pipe wrapped by a test harness): read it whole
            data = raw.read()
            head, stream = data[:HEAD_BYTES], io.BytesIO(data)
        enc = sniff_encoding(head, "<stdin>")
        return io.TextIOWrapper(stream, encoding=enc.encoding, errors="replace", newline=newline), enc
    p = check_readable(path)
    try:
        f = p.open("rb")
    except OSError as exc:
        raise MissingInputError(f"{path}: cannot read ({exc.strerror}). Check its permissions; nothing was read.") from None
    try:
        enc = sniff_encoding(f.read(HEAD_BYTES), str(path))
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return io.TextIOWrapper(f, encoding=enc.encoding, errors="replace", newline=newline), enc


def read_text(path: str | Path, *, stdin: BinaryIO | None = None) -> tuple[str, TextEncoding]:
    """The whole text of a file (``-``: standard input) and how it was decoded."""
    f, enc = open_text(path, stdin=stdin, newline="")
    with f:
        return f.read(), enc
