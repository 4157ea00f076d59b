"""``detector crawl`` and ``detector demo``: crawl a domain list into SQLite, or the demo sites."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from detector.cli.options import LockedExit, db_option, load_engine, signatures_option
from detector.errors import DetectorError
from detector.store.history import DEFAULT_MISS_THRESHOLD

F = TypeVar("F", bound=Callable[..., Any])

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``5MB``, ``500k``, ``1048576``.

    >>> parse_size("5MB"), parse_size("500k"), parse_size("1024")
    (5242880, 512000, 1024)
    """
    m = _SIZE.match(text)
    if not m:
        raise ValueError(text)
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * factor)


class SizeParam(click.ParamType):  # type: ignore[type-arg]
    """A byte size such as ``5MB``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse or fail with a usage error."""
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError:
            self.fail(f'"{value}" is not a size; write it like 5MB, 500k or 1048576', param, ctx)


def _verbosity(ctx: click.Context, verbose: int) -> int:
    parent = ctx.find_root().obj
    inherited = parent.get("verbose", 0) if isinstance(parent, dict) else 0
    return max(verbose, int(inherited or 0))


def crawl_options(func: F) -> F:
    """Every option of ``detector crawl`` except the input files; ``refresh`` takes them too."""
    options = [
        db_option("SQLite database to write (created and migrated)."),
        click.option("--column", help="CSV/TSV column holding the domain (name or 1-based number). Default: auto-detect domain/website/url."),
        click.option("--keep-subdomains", is_flag=True, help="Crawl blog.example.com as given instead of example.com."),
        click.option("--allow-ip", is_flag=True, help="Accept IP addresses as well as domain names."),
        click.option("--pages", default=2, show_default=True, type=click.IntRange(0, 20), help="Extra same-site pages per domain (pricing, shop, login, careers, contact, blog)."),
        click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1000), help="Requests in flight over all sites."),
        click.option("--per-site", default=2, show_default=True, type=click.IntRange(1, 16), help="Requests in flight per site."),
        click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(0.1), help="Seconds per request."),
        click.option("--retries", default=1, show_default=True, type=click.IntRange(0, 10), help="Retries after a timeout or connection error."),
        click.option("--max-size", default="5MB", show_default=True, type=SizeParam(), help="Largest response body; bigger ones fail as too_large."),
        click.option("--user-agent", help="User-Agent header to send."),
        click.option("--proxy", help="Send all traffic through this HTTP proxy (https by CONNECT), e.g. http://proxy:3128."),
        click.option("--ignore-robots", is_flag=True, help="Do not obey robots.txt."),
        click.option("--no-detect", is_flag=True, help="Fetch and record scans without running the engine."),
        click.option("--workers", default=-1, show_default=True, type=click.IntRange(-1, 64), help="Engine processes beside the crawler (-1: one per CPU; 0: in the crawler process)."),
        signatures_option,
        click.option("--json", "as_json", is_flag=True, help="Print the end summary as JSON."),
        click.option("--progress/--no-progress", default=None, help="Live progress on stderr (default: when stderr is a terminal)."),
        click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-vv for debug)."),
        click.option("--miss-threshold", default=DEFAULT_MISS_THRESHOLD, show_default=True, type=click.IntRange(1, 100), help="Consecutive complete, successful scans that must miss a technology before it is marked removed."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="FILE... | -")
@crawl_options
@click.pass_context
def crawl(ctx: click.Context, inputs: tuple[str, ...], db: str, column: str | None, keep_subdomains: bool,
          allow_ip: bool, pages: int, concurrency: int, per_site: int, timeout: float, retries: int,
          max_size: int, user_agent: str | None, proxy: str | None, ignore_robots: bool, no_detect: bool,
          workers: int, signature_dirs: tuple[str, ...], as_json: bool, progress: bool | None,
          verbose: int, miss_threshold: int) -> None:
    """Crawl the domains listed in FILE(s) into a SQLite database.

    FILE is plain text (one domain or URL per line, # comments) or CSV/TSV with a
    domain/website/url column; "-" reads stdin. Bad lines are reported and skipped.

    Example: detector crawl accounts.csv --db accounts.db --pages 3

    A domain crawled before gets its change history (added, removed, version changed)
    exactly as with `detector refresh`.

    Exit status: 0 when the run completed (failed domains are data in the scans table),
    1 when the database cannot be written, 2 for usage errors (missing file, no domain column),
    75 when another crawl or refresh holds the database's lock (nothing was done).
    """
    from detector.inputs import InputError, check_inputs, count_lines
    from detector.store.db import StorageError
    from detector.store.store import open_database

    if list(inputs).count("-") > 1:
        raise click.UsageError('"-" (stdin) can be given once.')
    check_proxy(proxy)
    try:
        check_inputs(inputs, column)
        total = count_lines(inputs) or 0
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        open_database(db).close()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    check_signatures(signature_dirs, no_detect)
    with holding_lock(db, "crawl"):
        report = _run(
            "crawl",
            inputs=inputs, db=db, column=column, keep_subdomains=keep_subdomains, allow_ip=allow_ip,
            pages=pages, concurrency=concurrency, per_site=per_site, timeout=timeout, retries=retries,
            max_size=max_size, user_agent=user_agent, proxy=proxy, ignore_robots=ignore_robots,
            detect=not no_detect, workers=workers, signatures=tuple(signature_dirs),
            verbose=_verbosity(ctx, verbose),
            progress=sys.stderr.isatty() if progress is None else progress, total=total,
            miss_threshold=miss_threshold,
        )
    _print_summary(db, report, as_json)


def check_signatures(signature_dirs: tuple[str, ...], no_detect: bool) -> None:
    """Compile ``--signatures`` once, so a bad pattern stops the run before anything is fetched."""
    if signature_dirs and not no_detect:
        load_engine(signature_dirs)


def check_proxy(proxy: str | None) -> None:
    """A usage error unless ``--proxy`` looks like ``http://host:port``."""
    if proxy and not re.match(r"^https?://[^/\s]+/?$", proxy):
        raise click.BadParameter(f'"{proxy}" is not a proxy URL; write it like http://proxy.example:3128', param_hint="--proxy")


@contextmanager
def holding_lock(db: str, command: str) -> Iterator[None]:
    """Hold the database's lock for a writing command; a refused run exits 75 at once."""
    from detector.store.lock import LockedError, database_lock

    try:
        with database_lock(db, command):
            yield
    except LockedError as exc:
        raise LockedExit(str(exc)) from None
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None


def _run(command: str, *, planned: int | None = None, **options: Any) -> Any:
    """Run the crawl under a ``runs`` row (``running``, then ``done``, ``failed`` if it raised)."""
    from detector.crawl.pipelines import new_run_id
    from detector.crawl.runner import CrawlOptions, run_crawl
    from detector.store.db import close_dead_runs, finish_run, start_run
    from detector.store.store import open_database

    run_id = new_run_id()
    started = time.monotonic()
    recorded = {k: v for k, v in options.items() if k not in ("verbose", "progress", "total", "inputs")}
    status = "failed"
    try:
        database = open_database(options["db"])
        try:
            close_dead_runs(database)  # the caller holds the lock: a run still "running" is dead
            start_run(database, run_id, command, planned=planned, options=recorded)
        finally:
            database.close()
        try:
            report = run_crawl(CrawlOptions(**options, run_id=run_id))
            # Scrapy stops gracefully on SIGTERM/SIGINT (systemd stop, Ctrl-C): unfinished
            # domains got error rows and stay stale; the run itself did not finish.
            status = "interrupted" if report.stats.get("finish_reason") == "shutdown" else "done"
        finally:
            database = open_database(options["db"])
            try:
                finish_run(database, run_id, status)
            finally:
                database.close()
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    report.stats["elapsed_seconds"] = round(time.monotonic() - started, 2)
    return report


def summary_of(db: str, report: Any) -> dict[str, Any]:
    """The end-of-run summary: the database's counts plus input and timing figures."""
    from detector.store.db import run_summary
    from detector.store.freshness import change_counts
    from detector.store.store import open_database

    database = open_database(db)
    try:
        summary = run_summary(database, report.run_id)
        changes = change_counts(database, report.run_id)
    finally:
        database.close()
    summary["changes"] = changes
    summary["invalid_lines"] = report.invalid_lines
    summary["elapsed_seconds"] = report.stats.get("elapsed_seconds")
    summary["database"] = db
    return summary


def _print_summary(db: str, report: Any, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    summary = {**summary_of(db, report), **(extra or {})}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(format_summary(summary))


def format_summary(s: dict[str, Any]) -> str:
    """The summary as text for people."""
    done = s["domains_ok"] + s["domains_failed"]
    kinds = ", ".join(f"{k} {n}" for k, n in s["failed_by_kind"].items())
    lines = [
        f"{'Refreshed' if s.get('command') == 'refresh' else 'Crawled'} {done:,} domain{'s' if done != 1 else ''} in {s.get('elapsed_seconds') or 0:.1f} s: "
        f"{s['domains_ok']:,} ok, {s['domains_failed']:,} failed" + (f" ({kinds})" if kinds else "") + ".",
    ]
    if s["invalid_lines"]:
        lines.append(f"{s['invalid_lines']:,} input line(s) were not domains and were skipped (listed above).")
    lines.append(f"{s['pages']:,} pages fetched; {s['technologies']:,} technologies found.")
    c = s.get("changes") or {}
    if any(c.values()):
        lines.append(
            f"Changes: {c.get('added', 0):,} added, {c.get('removed', 0):,} removed, "
            f"{c.get('version_changed', 0):,} version changed (see: detector changes --since 1d)."
        )
    if s["top_technologies"]:
        lines.append("Top technologies:")
        width = max(len(str(t["domains"])) for t in s["top_technologies"])
        for t in s["top_technologies"]:
            lines.append(f"  {t['domains']:>{width}}  {t['technology']}")
    lines.append(f"Database: {s['database']} (run {s['run_id']})")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@db_option("Database the demo writes.", default="demo.db")
@click.option("--json", "as_json", is_flag=True, help="Print the end summary as JSON.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64), help="Engine processes.")
@click.option("-v", "--verbose", count=True, help="Show Scrapy's log.")
@click.pass_context
def demo(ctx: click.Context, db: str, as_json: bool, workers: int, verbose: int) -> None:
    """Crawl a dozen bundled example sites offline (served on 127.0.0.1) into demo.db.

    Example: detector demo && sqlite-utils demo.db "select domain, technology from detections"
    """
    from detector.demo import demo_domains_file, start_demo_server
    from detector.store.db import StorageError
    from detector.store.store import open_database

    try:
        open_database(db).close()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    server = start_demo_server()
    try:
        domains = demo_domains_file()
        if not as_json:
            click.echo(f"Serving {len(server.sites)} example sites on {server.url}; crawling {domains} through it.", err=True)
        with holding_lock(db, "demo"):
            report = _run(
                "demo",
                inputs=(str(domains),), db=db, proxy=server.url, workers=workers, pages=2, timeout=5.0,
                retries=0, verbose=_verbosity(ctx, verbose), progress=sys.stderr.isatty(),
                total=0, concurrency=16,
            )
    finally:
        server.stop()
    _print_summary(db, report, as_json)
    if not as_json:
        click.echo("")
        click.echo("Try a query:")
        click.echo(
            f'  sqlite-utils {db} "select domain, technology, version, first_seen from detections '
            "where technology in (select name from technologies where categories like '%Ecommerce%')\" -t"
        )
        click.echo(f'  sqlite-utils {db} "select domain, status, error_kind, error_message from scans" -t')

