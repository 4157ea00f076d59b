"""Import the user's account list (CSV) into the `accounts` table, domains normalised."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from detector.errors import DetectorError
from detector.inputs import column_name, find_domain_column, sniff_delimiter
from detector.store.transaction import transaction
from detector.timestamps import format_time, utc_now

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")
_THOUSANDS = re.compile(r"-?[1-9][0-9]{0,2}(,[0-9]{3})+")

Value = str | int | float | None


class AccountsError(DetectorError):
    """The accounts file cannot be imported; the message names the line and the fix."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row whose domain appeared on an earlier line, and the values it replaced.

    The rule: rows are merged in file order; a later row's non-blank cells win, its blank
    cells keep the earlier value.
    """

    line: int
    domain: str
    first_line: int
    #: (column, earlier value, value kept) for each cell the later row changed.
    changed: tuple[tuple[str, Value, Value], ...] = ()

    def describe(self) -> str:
        """One line for the user."""
        what = (
            "; ".join(f"{c}: {old!r} -> {new!r}" for c, old, new in self.changed)
            if self.changed
            else "no value changed"
        )
        return f"line {self.line} repeats {self.domain} (first on line {self.first_line}): {what}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: rows read, accounts written, new ones, blanks skipped, duplicates."""

    rows: int
    accounts: int
    added: int
    skipped_blank: int
    duplicates: int
    domain_column: str
    duplicate_rows: tuple[Duplicate, ...] = ()


def typed_value(text: str) -> Value:
    """A CSV cell as a number when it is one, else text; blank is None.

    Leading zeros stay text (postcodes, phone numbers).

    >>> typed_value("5000"), typed_value("1,200"), typed_value("3.5"), typed_value("02139"), typed_value(" ")
    (5000, 1200, 3.5, '02139', None)
    """
    text = text.strip()
    if not text:
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _THOUSANDS.fullmatch(text):
        return int(text.replace(",", ""))
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def read_accounts(
    text: str,
    where: str,
    normalize: Callable[[str], str],
    domain_column: str | None = None,
) -> tuple[list[dict[str, Value]], ImportResult]:
    """Parse CSV text into account rows keyed by normalised domain; raise on bad domains."""
    first = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(first, where) or ",")
    headers = reader.fieldnames or []
    if not headers:
        raise AccountsError(f"{where}: empty file; the first line must be the column headers")
    index = find_domain_column(headers, domain_column)
    source = headers[index] if index is not None else None
    if source is None:
        wanted = f'"{domain_column}"' if domain_column else "domain or website"
        raise AccountsError(
            f"{where} line 1: no {wanted} column among {', '.join(headers)}; "
            "name one column `domain` or `website`, or pass --column"
        )
    names = _column_names(headers, source, where)
    rows: dict[str, dict[str, Value]] = {}
    first_lines: dict[str, int] = {}
    repeated: list[Duplicate] = []
    problems: list[str] = []
    blank = duplicates = count = 0
    for record in _records(reader, where):
        count += 1
        line = reader.line_num
        raw = (record.get(source) or "").strip()
        if not raw:
            blank += 1
            continue
        try:
            domain = normalize(raw)
        except DetectorError as exc:
            problems.append(f'{where} line {line}: "{raw}" {exc}. Fix or delete the line')
            continue
        row: dict[str, Value] = {"domain": domain}
        for header, name in names.items():
            if header is None:
                continue
            value = record.get(header)
            row[name] = typed_value(value) if isinstance(value, str) else None
        if domain in rows:
            duplicates += 1
            merged = rows[domain]
            later = {k: v for k, v in row.items() if v is not None and k != "domain"}
            changed = tuple(
                (k, merged.get(k), v) for k, v in later.items() if merged.get(k) != v
            )
            repeated.append(Duplicate(line, domain, first_lines[domain], changed))
            merged.update(later)
        else:
            rows[domain] = row
            first_lines[domain] = line
    if problems:
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise AccountsError("\n".join(problems[:20]) + more + "\nNothing was imported.")
    result = ImportResult(count, len(rows), 0, blank, duplicates, source, tuple(repeated))
    return list(rows.values()), result


def _records(reader: csv.DictReader[str], where: str) -> Iterator[dict[str, Any]]:
    """The reader's rows; a line csv cannot read is an AccountsError naming it."""
    try:
        yield from reader
    except csv.Error as exc:
        raise AccountsError(
            f"{where} line {reader.line_num + 1}: not readable as CSV ({exc}); quote fields holding line breaks "
            "or quotes, or save the file again from a spreadsheet. Nothing was imported."
        ) from None


def _column_names(headers: Iterable[str], source: str, where: str) -> dict[str, str]:
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for header in headers:
        name = column_name(header)
        if header == source and name == "domain":
            continue
        if not name:
            raise AccountsError(f'{where} line 1: column "{header}" has no usable name; rename it')
        if name in ("domain", "imported_at"):  # our own columns
            name += "_original"
        if name in seen:
            raise AccountsError(
                f'{where} line 1: columns "{seen[name]}" and "{header}" both become `{name}`; rename one'
            )
        seen[name] = header
        names[header] = name
    return names


def import_accounts(
    db: sqlite_utils.Database,
    text: str,
    where: str,
    normalize: Callable[[str], str],
    domain_column: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Upsert accounts from CSV text in one transaction; existing accounts are updated in place.

    Columns in the file overwrite their values (a blank cell clears one); columns the file
    does not have keep theirs.
    """
    rows, result = read_accounts(text, where, normalize, domain_column)
    stamp = format_time(now) if now else utc_now()
    for row in rows:
        row["imported_at"] = stamp
    existing = {r[0] for r in db.execute("select domain from accounts")}
    with transaction(db) as conn:
        columns = _ensure_columns(db, rows)
        if rows:
            names = ", ".join(f"[{c}]" for c in columns)
            marks = ", ".join("?" for _ in columns)
            updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != "domain")
            conn.executemany(
                f"insert into accounts ({names}) values ({marks}) "
                f"on conflict (domain) do update set {updates}",
                ([row.get(c) for c in columns] for row in rows),
            )
    added = sum(1 for r in rows if r["domain"] not in existing)
    return ImportResult(
        result.rows,
        result.accounts,
        added,
        result.skipped_blank,
        result.duplicates,
        result.domain_column,
        result.duplicate_rows,
    )


def _ensure_columns(db: sqlite_utils.Database, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Add missing columns typed by their values; return the file's columns in order.

    A column is INTEGER or REAL only when every value in the file is a number, so a text
    value never gets coerced; existing columns keep their type.
    """
    kinds: dict[str, set[type]] = {}
    for row in rows:
        for key, value in row.items():
            seen = kinds.setdefault(key, set())
            if value is not None:
                seen.add(type(value))
    have = {r[1] for r in db.execute("pragma table_info(accounts)")}
    for key, types in kinds.items():
        if key in have:
            continue
        if types and types <= {int}:
            sql_type = "INTEGER"
        elif types and types <= {int, float}:
            sql_type = "REAL"
        else:
            sql_type = "TEXT"
        db.execute(f"alter table accounts add column [{key}] {sql_type}")
    return list(kinds)


def import_(
    db_path: str | Path,
    text: str,
    where: str = "<stdin>",
    *,
    domain_column: str | None = None,
    keep_subdomains: bool = False,
    allow_ip: bool = False,
    now: datetime | None = None,
) -> ImportResult:
    """Import accounts from CSV text into a database, holding its lock (``accounts import``).

    Domains are cleaned as the crawl cleans them (see :func:`detector.inputs.clean_domain`).
    """
    from detector.inputs import clean_domain
    from detector.store.store import Store

    normalize = functools.partial(clean_domain, keep_subdomains=keep_subdomains, allow_ip=allow_ip)
    with Store.open(db_path, lock="accounts import") as store:
        return import_accounts(store.db, text, where, normalize, domain_column, now)
