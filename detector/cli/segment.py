"""CLI commands `accounts import` and `segment` (registered on the main group in cli.py)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import click
import sqlite_utils

from detector.cli.options import db_option
from detector.engine.signatures import load_signatures
from detector.errors import DetectorError
from detector.inputs import clean_domain
from detector.segment.assign import Account, Assignment, Segmenter, plural, summary_warnings
from detector.segment.rules import Vocabulary, check_columns, load_rules, needed_technologies
from detector.store.accounts import import_accounts
from detector.store.cohorts import (
    account_source,
    format_table,
    iter_accounts,
    size_table,
    write_export,
    write_segmentation,
)
from detector.store.db import open_database


def open_db(path: str) -> sqlite_utils.Database:
    """Open the database with every migration applied; storage errors become click errors."""
    try:
        return open_database(path)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None


def _note(text: str) -> None:
    click.echo(text, err=True)


@click.group("accounts")
def accounts() -> None:
    """Manage the account list (domains plus firmographics) that `segment` uses."""


@accounts.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@db_option("SQLite database file.", dest="db_path")
@click.option(
    "--domain-column", help="Column holding the website (default: domain, website, url...)."
)
@click.option(
    "--keep-subdomains",
    is_flag=True,
    help="Keep blog.example.com as given instead of example.com (as `crawl --keep-subdomains`).",
)
@click.option(
    "--allow-ip", is_flag=True, help="Accept IP addresses as well (as `crawl --allow-ip`)."
)
def accounts_import(
    file: click.utils.LazyFile,
    db_path: str,
    domain_column: str | None,
    keep_subdomains: bool,
    allow_ip: bool,
) -> None:
    """Load accounts from a CSV file into the `accounts` table; re-importing updates in place.

    The file needs a domain or website column; every other column (name, industry,
    employees, country, owner...) is kept, numbers as numbers. `-` reads stdin.

    \b
    Example:
      detector accounts import accounts.csv --db detector.db
    """
    name = str(getattr(file, "name", "<stdin>"))
    where = "<stdin>" if name in ("<stdin>", "-") else name
    text = file.read()
    db = open_db(db_path)
    try:
        normalize = functools.partial(
            clean_domain, keep_subdomains=keep_subdomains, allow_ip=allow_ip
        )
        result = import_accounts(db, text, where, normalize, domain_column)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    updated = result.accounts - result.added
    click.echo(
        f"imported {plural(result.accounts, 'account')} from {where} ({result.added} new, {updated} updated)"
    )
    if result.skipped_blank:
        _note(
            f"note: skipped {result.skipped_blank} rows with an empty {result.domain_column} column"
        )
    if result.duplicates:
        _note(f"note: merged {result.duplicates} rows whose domain appeared earlier in the file")


def _check_export_path(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".json"):
        raise click.BadParameter(f"{path}: write FILE.csv or FILE.json", param_hint="'--export'")
    if not path.parent.is_dir():
        raise click.BadParameter(
            f"{path}: the folder {path.parent} does not exist; create it or pick another path",
            param_hint="'--export'",
        )


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date; write e.g. 2026-11-20") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Tally:
    """Counts accounts seen and in market while they stream through."""

    def __init__(self) -> None:
        self.seen = 0
        self.in_market = 0
        self.stale_scans = 0

    def run(self, segmenter: Segmenter, accounts: Iterable[Account]) -> Iterator[Assignment]:
        for account in accounts:
            self.seen += 1
            if segmenter.in_market(account):
                self.in_market += 1
                assignment = segmenter.assign(account)
                self.stale_scans += assignment.scan_stale
                yield assignment


@click.command("segment")
@click.option(
    "--rules",
    "rules_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Rules file (YAML); see examples/rules.yaml.",
)
@db_option("SQLite database file.", dest="db_path")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    help="Also write one row per account to FILE.csv or FILE.json for CRM/ABM import.",
)
@click.option("--as-of", help="Judge freshness as of this ISO date/time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the cohort sizes as a JSON array.")
@click.option(
    "--signatures",
    "signature_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Signature directories for checking names (default: the bundled library).",
)
def segment(
    rules_path: str,
    db_path: str,
    export_path: str | None,
    as_of: str | None,
    as_json: bool,
    signature_dirs: tuple[str, ...],
) -> None:
    """Assign accounts to cohorts by their technologies and firmographics, with reasons.

    Replaces the `cohorts` and `cohort_members` tables in one transaction and prints
    cohort sizes by tier. Accounts never scanned successfully go to `unknown`.

    \b
    Example:
      detector segment --rules examples/rules.yaml --db detector.db --export cohorts.csv
    """
    now = _parse_as_of(as_of)
    if export_path is not None:
        _check_export_path(Path(export_path))
    if not Path(db_path).exists():
        raise click.ClickException(
            f"{db_path}: no such database; run `detector accounts import FILE.csv` "
            "and `detector crawl` first, or pass --db"
        )
    try:
        vocabulary = Vocabulary.from_library(load_signatures(list(signature_dirs) or None))
        rules = load_rules(rules_path, vocabulary)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    db = open_db(db_path)
    source = account_source(db)
    if source.count == 0:
        raise click.ClickException(
            f"{db_path}: no accounts to segment; run `detector accounts import FILE.csv` "
            "or `detector crawl` first"
        )
    try:
        check_columns(rules, source.columns(db))
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    if source.table == "domains":
        _note(
            f"note: no accounts imported; segmenting {plural(source.count, 'crawled domain')} "
            "without firmographics"
        )
    tally = _Tally()
    segmenter = Segmenter(rules, now)
    computed_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = write_segmentation(
        db,
        rules,
        tally.run(segmenter, iter_accounts(db, source, needed_technologies(rules, vocabulary))),
        computed_at,
    )
    table = size_table(rules, counts)
    if as_json:
        header = [h.replace(" ", "_") for h in table[0]]
        rows = [dict(zip(header, [r[0], *(int(v) for v in r[1:])])) for r in table[1:]]
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(table))
    out_of_market = tally.seen - tally.in_market
    _note(
        f"segmented {plural(tally.in_market, 'account')} ({out_of_market} outside the market filters)"
    )
    sizes: Counter[str] = Counter()
    for (cohort, _column), n in counts.items():
        sizes[cohort] += n
    for warning in summary_warnings(rules, sizes, tally.stale_scans):
        _note(warning)
    if export_path:
        n = write_export(db, Path(export_path))
        _note(f"exported {plural(n, 'account')} to {export_path}")
