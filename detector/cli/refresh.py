"""``detector refresh``, ``detector changes`` and ``detector status``: keep the database fresh."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from detector.cli.options import (
    InputPath,
    check_proxy,
    crawl_options,
    crawl_settings,
    db_option,
    exit_for,
    print_summary,
    reported,
)
from detector.cli.worker import enqueue_options, redis_option, redis_status, refresh_redis
from detector.errors import DetectorError
from detector.store.history import CHANGE_KINDS, DurationError, parse_duration

if TYPE_CHECKING:
    from detector.crawl.refresh import RefreshReport

CONTEXT = {"help_option_names": ["-h", "--help"]}


class DurationParam(click.ParamType):  # type: ignore[type-arg]
    """A duration such as ``7d``, ``12h``, ``30m`` or ``2w``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        """Parse or fail with a usage error naming the accepted forms."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except DurationError as exc:
            self.fail(str(exc), param, ctx)


@click.command(context_settings=CONTEXT)
@click.option("--older-than", default="7d", show_default=True, type=DurationParam(),
              help="Re-scan domains whose last successful scan is older than this (30m, 12h, 7d, 2w).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Scan at most N stale domains, longest waiting first; the rest wait for the next run.")
@click.option("--domains", "domains_file", type=InputPath(),
              help="Only consider the domains listed in this file (same formats as crawl; '-' for stdin).")
@crawl_options
@enqueue_options
@click.pass_context
def refresh(ctx: click.Context, /, older_than: timedelta, limit: int | None, domains_file: str | None,
            as_json: bool, **options: Any) -> None:
    """Re-scan the domains whose last successful scan is older than --older-than.

    Domains that never had a successful scan count as stale. Every crawl option applies.
    Each scan updates the change history: a technology is marked removed only after
    --miss-threshold consecutive complete, successful scans no longer see it; a failed or
    partial scan never removes anything.

    \b
    Examples:
      detector refresh --db /srv/detector.db --older-than 7d --limit 5000
      detector refresh --older-than 0 --domains key-accounts.txt   # these, now

    With --redis URL the stale domains are queued for `detector worker`s instead (see
    `detector crawl --help`).

    Exit status: 0 when the run completed or nothing was stale, 1 when the run failed, 2 for
    usage errors, 65 when --domains is not text, 66 when it is missing, 73 when the database
    is read-only, 75 when another crawl or refresh holds the database's lock (nothing was
    done; try again later).
    """
    from detector.crawl.refresh import run

    check_proxy(options["proxy"])
    db = options["db"]
    only = _read_domain_file(domains_file, options["column"], options["keep_subdomains"],
                             options["allow_ip"]) if domains_file else None
    if options["wait"] and not options["redis_url"]:
        raise click.UsageError("--wait goes with --redis URL (it waits for the workers' results).")
    if options["redis_url"]:
        def announce(n: int, left: int) -> None:
            if not as_json:
                click.echo(f"Queueing {n:,} stale domain(s)" + (f"; {left:,} more left by --limit" if left else "")
                           + ".", err=True)

        if not refresh_redis(ctx, {**options, "as_json": as_json}, older_than=older_than, only=only,
                             limit=limit, announce=announce):
            click.echo("Nothing to refresh: every chosen domain had a successful scan recently.")
        return
    settings = crawl_settings(ctx, (), 0, options)
    given = {name for name in options if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)}
    with reported():
        report = run(settings, older_than=older_than, only=only, limit=limit,
                     on_plan=_announce_reused if as_json else _announce, given=given)
    if report.crawl is None:
        if as_json:
            click.echo(json.dumps({"refreshed": 0, "stale": 0, "older_than": report.older_than, "database": db}, indent=2))
        else:
            scope = (f"the {len(only):,} domain(s) of {domains_file}" if only is not None
                     else f"all {report.plan.known_total:,} domain(s)")
            click.echo(f"Nothing to refresh: {scope} had a successful scan within the last {report.older_than}.")
        return
    print_summary(report.crawl.summary, as_json)


def _announce_reused(report: RefreshReport) -> None:
    """Say on stderr which options the last crawl lent this refresh."""
    from detector.crawl.runner import option_flag

    if report.reused:
        flags = " ".join(option_flag(name, value) for name, value in report.reused.items())
        click.echo(f"Reusing the network options of the last crawl ({report.reused_from}): {flags}. "
                   "Give an option again to change it.", err=True)


def _announce(report: RefreshReport) -> None:
    """Say on stderr what a refresh is about to crawl, before it crawls."""
    _announce_reused(report)
    why = ("(--older-than 0: all chosen)" if not report.older_than_delta
           else f"not scanned successfully in the last {report.older_than}")
    left = report.stale_left
    click.echo(
        f"Refreshing {len(report.plan.domains):,} domain(s) {why}"
        + (f"; {left:,} more left for the next run by --limit" if left else "") + ".",
        err=True,
    )


def _read_domain_file(path: str, column: str | None, keep_subdomains: bool, allow_ip: bool) -> list[str]:
    """Clean domains of a --domains file, as the crawl would; bad lines are reported and skipped."""
    from detector.inputs import DomainEntry, InputError, check_inputs, read_domains

    try:
        for warning in check_inputs((path,), column):
            click.echo(warning, err=True)
        entries = list(read_domains([path], column=column, keep_subdomains=keep_subdomains, allow_ip=allow_ip))
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    except DetectorError as exc:
        raise exit_for(exc) from None
    domains = []
    for entry in entries:
        if isinstance(entry, DomainEntry):
            domains.append(entry.domain)
        else:
            click.echo(f"warning: {entry.describe()}; skipped", err=True)
    return list(dict.fromkeys(domains))


def _age_text(delta: timedelta) -> str:
    from detector.store.freshness import format_timedelta

    return format_timedelta(delta)


# ---------------------------------------------------------------------------- changes

_CHANGE_COLUMNS = ["at", "domain", "technology", "kind", "old_version", "new_version", "scan_id", "run_id"]


@click.command(context_settings=CONTEXT)
@db_option("SQLite database to read.")
@click.option("--since", default="30d", show_default=True, type=DurationParam(),
              help="Only changes at most this old (30m, 12h, 7d, 2w).")
@click.option("--technology", help="Only this technology (any case), e.g. Shopify.")
@click.option("--kind", type=click.Choice(CHANGE_KINDS), help="Only this kind of change.")
@click.option("--domain", help="Only this domain.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N changes (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.option("--nl", "as_nl", is_flag=True, help="Print one JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
def changes(db: str, since: timedelta, technology: str | None, kind: str | None, domain: str | None,
            limit: int | None, as_json: bool, as_nl: bool, as_csv: bool) -> None:
    """List the change history: technologies added, removed, or with a new version.

    \b
    Example:
      detector changes --since 7d --technology Stripe --kind removed --csv > churned.csv

    Exit status: 0 (also when nothing changed), 1 when the database cannot be read, 2 for usage errors.
    """
    from detector.store.freshness import list_changes

    if sum((as_json, as_nl, as_csv)) > 1:
        raise click.UsageError("Choose one of --json, --nl and --csv.")
    database = _open_existing(db)
    try:
        rows = list_changes(database, since=since, technology=technology, kind=kind, domain=domain, limit=limit)
        known = _known_technology(database, technology, db) if technology and not rows else None
    finally:
        database.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif as_nl:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    elif as_csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_CHANGE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(format_changes(rows, _age_text(since)))
    if known is not None:
        click.echo(known, err=True)


def format_changes(rows: Sequence[dict[str, Any]], since: str) -> str:
    """Changes as an aligned table for people, newest first."""
    if not rows:
        return f"No changes in the last {since}."
    marks = {"added": "+", "removed": "-", "version_changed": "~"}
    table = []
    for r in rows:
        if r["kind"] == "version_changed":
            what = f"{r['old_version'] or '?'} -> {r['new_version']}"
        else:
            what = r["new_version"] or r["old_version"] or ""
        table.append((r["at"], r["domain"], f"{marks[r['kind']]} {r['kind']}", r["technology"], what))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip() for row in table]
    lines.append(f"{len(rows):,} change(s) in the last {since}.")
    return "\n".join(lines)


def _known_technology(database: Any, name: str, db: str) -> str | None:
    """A hint when --technology names nothing the library or the database knows."""
    import difflib

    from detector.store.freshness import technology_names

    names = technology_names(database)
    if any(n.lower() == name.lower() for n in names):
        return None
    close = difflib.get_close_matches(name, sorted(set(names)), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f'note: no technology is named "{name}" in {db} or its signature library.{hint}'


def _open_existing(db: str) -> Any:
    from detector.store.scans import StorageError
    from detector.store.store import open_database

    if not Path(db).exists():
        raise click.ClickException(f"{db}: no such database. Crawl into it first: detector crawl domains.txt --db {db}")
    try:
        return open_database(db)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None


# ---------------------------------------------------------------------------- status


@click.command(context_settings=CONTEXT)
@db_option("SQLite database to read.")
@click.option("--stale-after", default="30d", show_default=True, type=DurationParam(),
              help="Flag active detections last seen longer ago than this as stale.")
@click.option("--show", default=10, show_default=True, type=click.IntRange(0), help="Stale detections to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@redis_option("Show the distributed runs in this Redis instead: queued, leased, done, failed, workers.")
def status(db: str, stale_after: timedelta, show: int, as_json: bool, redis_url: str | None,
           redis_prefix: str) -> None:
    """How fresh the database is: scan ages, failing domains, last refresh, stale detections.

    With --redis URL: the runs queued there (queue length, leased, done, failed, stored) and
    the workers seen in the last minute.

    \b
    Example:
      detector status --db /srv/detector.db --stale-after 14d
      detector status --redis redis://queue.internal:6379/0

    Exit status: 0, 1 when the database (or Redis) cannot be read, 2 for usage errors.
    """
    if redis_url:
        redis_status(redis_url, redis_prefix, as_json)
        return
    from detector.store.freshness import status_report
    from detector.store.lock import lock_holder

    database = _open_existing(db)
    try:
        report = status_report(database, stale_after=stale_after, show=show)
    finally:
        database.close()
    report["database"] = db
    report["running"] = lock_holder(db)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(format_status(report))


def format_status(r: dict[str, Any]) -> str:
    """The status report as text for people."""
    lines = [f"Database: {r['database']} ({r['database_domains']:,} domains)"
             + (f" - running now: {r['running']}" if r["running"] else "")]
    lines.append("Last successful scan:")
    for label, n in r["last_ok_scan_age"].items():
        lines.append(f"  {label:>7}  {n:,}")
    if r["oldest_ok_scan"]:
        lines.append(f"  oldest: {r['oldest_ok_scan']['domain']} at {r['oldest_ok_scan']['at']}")
    if r["failing_domains"]:
        kinds = ", ".join(f"{k} {n:,}" for k, n in r["failing_by_kind"].items())
        lines.append(f"Failing domains (latest scan failed): {r['failing_domains']:,} ({kinds})")
    else:
        lines.append("Failing domains (latest scan failed): none")
    for key, name in (("last_refresh", "Last refresh"), ("last_crawl", "Last crawl")):
        run = r[key]
        if run is None:
            lines.append(f"{name}: never")
            continue
        c = run["changes"]
        kind = " (detector demo)" if run.get("command") == "demo" else ""
        lines.append(
            f"{name}{kind}: {run['started_at']} ({run['status']}) {run['domains_ok'] or 0:,} ok, "
            f"{run['domains_failed'] or 0:,} failed; changes: {c['added']:,} added, {c['removed']:,} removed, "
            f"{c['version_changed']:,} version changed"
        )
    if r["interrupted_runs"]:
        lines.append(f"Interrupted runs (killed before the end): {r['interrupted_runs']:,}; "
                     "what they did not reach is still stale and the next refresh takes it")
    d = r["detections"]
    lines.append(f"Detections: {d['active']:,} active, {d['removed']:,} removed; "
                 f"{d['stale']:,} stale (last seen over {d['stale_after']} ago)")
    for s in d["stale_examples"]:
        lines.append(f"  stale  {s['domain']}  {s['technology']}  last seen {s['last_seen']} ({s['age']} ago)")
    if d["stale"] > len(d["stale_examples"]):
        lines.append(f"  ... {d['stale'] - len(d['stale_examples']):,} more; run: detector refresh --older-than {d['stale_after']}")
    return "\n".join(lines)

