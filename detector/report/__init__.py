"""``detector report``: one self-contained HTML file about a database, with charts.

:func:`build_report` reads a database (through :mod:`detector.store.report`) and returns the
page; :func:`write_report` writes it to a file, atomically.  The page holds technology adoption
(top N technologies and categories), cohort sizes by tier, changes per week (added / removed),
scan health (ok versus error kinds, age of the data, stale share) and a searchable table of the
domains.

Why the charts are SVG drawn here, in Python, and not a JavaScript charting library:

- **Nothing to fetch, nothing to vendor.** The file must work offline and load nothing: a chart
  library would be 50-250 KB of someone else's minified code to inline in every report, to
  keep up to date and to license.  Bar charts are a few rectangles: :mod:`detector.report.svg`
  draws them in ~150 lines that the tests read like any other code.
- **Works with scripts off, prints well.** The charts are in the HTML itself, so a mail client,
  a locked-down browser or a PDF printer shows them; SVG scales to a phone's width and prints
  as sharp vectors.  The only script is the table search (a few lines, hashed in the page's
  Content-Security-Policy); without it the table is all there, unfiltered.
- **Safe with hostile data.** Technology names, domains and error kinds come from the web:
  every one is escaped where it is written, and the page's policy (``default-src 'none'``)
  forbids any request and any other script, so even a missed escape could not phone home.
- **Testable.** Each bar is an element with its value: a test counts them against the
  database, and Chromium measures them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from detector.errors import EX_CANTCREAT, DetectorError
from detector.report.page import render_html
from detector.store.report import ReportOptions, read_report
from detector.store.store import Store

__all__ = ["ReportError", "ReportOptions", "ReportOutputError", "WrittenReport", "build_report", "write_report"]


class ReportError(DetectorError):
    """The report cannot be made: no such database."""


class ReportOutputError(DetectorError):
    """The report cannot be written where asked (no such folder, not writable)."""

    exit_code = EX_CANTCREAT


@dataclass(frozen=True, slots=True)
class WrittenReport:
    """Where the report went, how big it is and how much it covers."""

    path: Path
    size: int
    domains: int
    domains_listed: int


def _file_mode() -> int:
    """What a new file gets under this process's umask (mkstemp's own is 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("detector")
    except PackageNotFoundError:
        return ""


def build_report(db_path: str | Path, options: ReportOptions | None = None) -> tuple[str, int, int]:
    """The report page for an existing database, with how many domains it holds and lists.

    Raises :class:`ReportError` when the database does not exist (nothing is created), and the
    store's errors when it cannot be opened.
    """
    if not Path(db_path).exists():
        raise ReportError(
            f"{db_path}: no such database. Crawl a domain list into it first: "
            f"detector crawl domains.txt --db {db_path}"
        )
    with Store.open(db_path) as store:
        data = read_report(store.db, options)
    return render_html(data, database=str(db_path), version=_version()), data.domain_total, len(data.domains)


def write_report(db_path: str | Path, output: str | Path, options: ReportOptions | None = None) -> WrittenReport:
    """Write the report of ``db_path`` to ``output`` (replaced atomically: a reader never sees half a file)."""
    out = Path(output)
    folder = out.parent
    if not folder.is_dir():
        raise ReportOutputError(f"{output}: the folder {folder} does not exist. Create it or pick another -o; "
                                "nothing was written.")
    if out.is_dir():
        raise ReportOutputError(f"{output}: is a folder. Give a file name, e.g. -o {out / 'report.html'}.")
    page, total, listed = build_report(db_path, options)
    data = page.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ReportOutputError(f"{output}: cannot write there ({exc.strerror}). Pick another -o; "
                                "nothing was written.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ReportOutputError(f"{output}: cannot write the report ({exc.strerror}). Pick another -o; "
                                "nothing was written.") from None
    return WrittenReport(out, len(data), total, listed)
