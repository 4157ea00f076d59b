"""`detector accounts import` and `detector segment`: options in, library call, report out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from detector.cli.options import InputPath, db_option, reported
from detector.segment.assign import plural
from detector.segment.runner import SegmentError, check_export_path, diff, run, runs
from detector.store.accounts import import_
from detector.store.cohorts import DEFAULT_SEGMENTATION, EXPORT_FORMATS, format_table
from detector.textinput import read_text
from detector.timestamps import now as clock_now
from detector.timestamps import parse_time

F = TypeVar("F", bound=Callable[..., Any])


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
        _note(
            f"note: merged {plural(result.duplicates, 'row')} whose domain appeared earlier in "
            "the file (rows merge in file order: a later non-blank cell wins, a blank one keeps "
            "the earlier value):"
        )
        for dup in result.duplicate_rows[:20]:
            _note(f"  {where} {dup.describe()}")
        if len(result.duplicate_rows) > 20:
            _note(f"  ... and {len(result.duplicate_rows) - 20} more")


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return clock_now()
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date; write e.g. 2026-11-20") from None


def _name_option() -> Callable[[F], F]:
    return click.option(
        "--name",
        "name",
        default=DEFAULT_SEGMENTATION,
        show_default=True,
        help="Segmentation name: keep several side by side (e.g. `q4-email`, `partners`).",
    )


@click.group("segment", invoke_without_command=True)
@click.option(
    "--rules",
    "rules_path",
    type=InputPath(hint=lambda: _example_hint()),
    help="Rules file (YAML); see examples/rules.yaml (a copy ships with detector: the error for a "
    "missing file names it). Required unless a subcommand is given.",
)
@db_option("SQLite database file.", dest="db_path")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    help="Also write one row per account (every account) to FILE.csv or FILE.json for CRM/ABM import.",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(EXPORT_FORMATS),
    default="plain",
    show_default=True,
    help="Export column names: ours, or a CRM's custom-property style (hubspot, salesforce).",
)
@click.option("--as-of", help="Judge freshness and timing as of this ISO date/time (default: now).")
@_name_option()
@click.option(
    "--force",
    is_flag=True,
    help="Store the result even when the market matches no account or every cohort empties.",
)
@click.option("--json", "as_json", is_flag=True, help="Print sizes, funnel, overlap and warnings as JSON.")
@click.option(
    "--signatures",
    "signature_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Signature directories for checking names (default: the bundled library).",
)
@click.pass_context
def segment(
    ctx: click.Context,
    rules_path: str | None,
    db_path: str,
    export_path: str | None,
    export_format: str,
    as_of: str | None,
    name: str,
    force: bool,
    as_json: bool,
    signature_dirs: tuple[str, ...],
) -> None:
    """Assign accounts to cohorts by their technologies and firmographics, with reasons.

    Stores the run (kept with an id, the rules file's name and hash, and its time) and makes
    it the current result of the segmentation `--name` (default: `default`), in one
    transaction. Prints accounts per cohort by tier, the funnel (accounts -> market ->
    scanned -> in a cohort -> tiered) and the overlap between cohorts. Accounts never
    scanned successfully go to `unknown`. A run whose market matches no account, or that
    would empty a segmentation that had members, is refused (exit 1) unless --force.

    \b
    Example:
      detector segment --rules examples/rules.yaml --db detector.db --export cohorts.csv
      detector segment diff --db detector.db            # who moved since the previous run
      detector segment runs --db detector.db

    Exit status: 0 stored, 1 error (bad rules, refused run, no database), 2 usage,
    75 another run holds the database.
    """
    if ctx.invoked_subcommand is not None:
        return
    if rules_path is None:
        raise click.UsageError("Missing option '--rules' (or give a subcommand: diff, runs).")
    moment = _parse_as_of(as_of)
    if export_path is not None:
        try:
            check_export_path(Path(export_path))
        except SegmentError as exc:
            raise click.BadParameter(str(exc), param_hint="'--export'") from None
    with reported():
        report = run(
            db_path,
            rules_path,
            signature_dirs=signature_dirs,
            as_of=moment,
            export_path=export_path,
            export_format=export_format,
            name=name,
            force=force,
        )
    for note in report.notes:
        _note(note)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(format_table(report.table))
        click.echo()
        click.echo(format_table([["funnel", "accounts"], *([s, str(n)] for s, n in report.funnel)]))
        if report.overlap:
            click.echo()
            click.echo(format_table([["overlap", *report.overlap[0][1:]], *report.overlap[1:]]))
    _note(
        f"segmented {plural(report.in_market, 'account')} ({report.out_of_market} outside the "
        f"market filters) into {plural(report.memberships, 'membership')}: "
        f'run {report.run_id} of segmentation "{report.segmentation}"'
    )
    for warning in report.warnings:
        _note(warning)
    if export_path and report.exported is not None:
        _note(f"exported {plural(report.exported, 'account')} to {export_path}")


@segment.command("diff")
@db_option("SQLite database file.", dest="db_path")
@_name_option()
@click.option(
    "--since",
    help="Compare with this run id, or the last run on or before this ISO date (default: the previous run).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (domain, change, cohort, before, after, reason).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: the two runs and the moves.")
def segment_diff(db_path: str, name: str, since: str | None, as_csv: bool, as_json: bool) -> None:
    """List accounts that entered or left each cohort, or changed tier, with the reason.

    Compares the segmentation's latest run with an earlier one.

    \b
    Examples:
      detector segment diff --db detector.db
      detector segment diff --db detector.db --since 2026-08-01 --csv > moves.csv
    """
    if as_csv and as_json:
        raise click.UsageError("pick one of --csv and --json")
    with reported():
        report = diff(db_path, name=name, since=since)
    records = report.records()
    if as_json:
        payload = {
            "segmentation": name,
            "from": {"run": report.old.id, "computed_at": report.old.computed_at},
            "to": {"run": report.new.id, "computed_at": report.new.computed_at},
            "moves": records,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    if as_csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(MOVE_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        click.echo(out.getvalue(), nl=False)
    elif records:
        rows = [list(MOVE_COLUMNS)] + [[r[c] for c in MOVE_COLUMNS] for r in records]
        click.echo(format_table(rows, left=len(MOVE_COLUMNS)))
    _note(
        f"{plural(len(records), 'change')} from run {report.old.id} ({report.old.computed_at[:10]}) "
        f'to run {report.new.id} ({report.new.computed_at[:10]}) of segmentation "{name}"'
    )


MOVE_COLUMNS = ("domain", "change", "cohort", "before", "after", "reason")


@segment.command("runs")
@db_option("SQLite database file.", dest="db_path")
@click.option("--name", "name", help="Only this segmentation (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def segment_runs(db_path: str, name: str | None, as_json: bool) -> None:
    """List the stored segmentation runs, oldest first, with their counts.

    \b
    Example:
      detector segment runs --db detector.db
    """
    with reported():
        found = runs(db_path, name=name)
    records = [
        {
            "run": r.id,
            "segmentation": r.segmentation,
            "computed_at": r.computed_at,
            "rules_file": r.rules_file,
            "rules_sha256": r.rules_sha256[:12],
            "accounts": r.accounts,
            "in_market": r.in_market,
            "in_cohort": r.in_cohort,
            "tiered": r.tiered,
            "forced": r.forced,
        }
        for r in found
    ]
    if as_json:
        click.echo(json.dumps(records, indent=2))
    elif records:
        header = list(records[0])
        click.echo(format_table([header, *([str(r[k]) for k in header] for r in records)]))
    else:
        _note("no segmentation runs stored yet; run `detector segment --rules FILE` first")
