"""`detector accounts import` and `detector segment`: options in, library call, report out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from detector.cli.options import InputPath, db_option, reported
from detector.segment.assign import plural
from detector.segment.runner import SegmentError, check_export_path, run
from detector.store.accounts import import_
from detector.store.cohorts import format_table
from detector.textinput import read_text
from detector.timestamps import parse_time


def _example_hint() -> str | None:
    """Where the shipped example rules are, for a missing --rules file."""
    from detector.bundled import example_rules

    example = example_rules()
    return f"A commented example ships with detector: {example} (copy it, then edit)." if example else None


def _note(text: str) -> None:
    click.echo(text, err=True)


@click.group("accounts")
def accounts() -> None:
    """Manage the account list (domains plus firmographics) that `segment` uses."""


@accounts.command("import")
@click.argument("file", type=InputPath())
@db_option("SQLite database file.", dest="db_path")
@click.option(
    "--column", "--domain-column", "domain_column",
    help="Column holding the website: a name or 1-based number, as `crawl --column` "
         "(default: domain, website, url...). --domain-column is the old spelling.",
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
    file: str,
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
    where = "<stdin>" if file == "-" else file
    with reported():
        text, encoding = read_text(file)
        if encoding.warning:
            _note(encoding.warning)
        result = import_(db_path, text, where, domain_column=domain_column,
                         keep_subdomains=keep_subdomains, allow_ip=allow_ip)
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


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date; write e.g. 2026-11-20") from None


@click.command("segment")
@click.option(
    "--rules",
    "rules_path",
    required=True,
    type=InputPath(hint=lambda: _example_hint()),
    help="Rules file (YAML); see examples/rules.yaml (a copy ships with detector: the error for a "
    "missing file names it).",
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
    moment = _parse_as_of(as_of)
    if export_path is not None:
        try:
            check_export_path(Path(export_path))
        except SegmentError as exc:
            raise click.BadParameter(str(exc), param_hint="'--export'") from None
    with reported():
        report = run(db_path, rules_path, signature_dirs=signature_dirs, as_of=moment, export_path=export_path)
    for note in report.notes:
        _note(note)
    if as_json:
        click.echo(json.dumps(report.sizes(), indent=2))
    else:
        click.echo(format_table(report.table))
    _note(f"segmented {plural(report.in_market, 'account')} ({report.out_of_market} outside the market filters)")
    for warning in report.warnings:
        _note(warning)
    if export_path and report.exported is not None:
        _note(f"exported {plural(report.exported, 'account')} to {export_path}")
