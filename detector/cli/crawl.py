"""``detector crawl`` and ``detector demo``: crawl a domain list into SQLite, or the demo sites."""

from __future__ import annotations

import sys
from typing import Any

import click

from detector.cli.options import (
    check_database,
    crawl_options,
    crawl_settings,
    db_option,
    print_summary,
    reported,
    verbosity,
)
from detector.cli.worker import crawl_redis, enqueue_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="FILE... | -")
@crawl_options
@enqueue_options
@click.pass_context
def crawl(ctx: click.Context, /, inputs: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Crawl the domains listed in FILE(s) into a SQLite database.

    FILE is plain text (one domain or URL per line, # comments) or CSV/TSV with a
    domain/website/url column; "-" reads stdin. Bad lines are reported and skipped.

    Example: detector crawl accounts.csv --db accounts.db --pages 3

    A domain crawled before gets its change history (added, removed, version changed)
    exactly as with `detector refresh`.

    Exit status: 0 when the run completed (failed domains are data in the scans table) or the
    input held no domains (a warning; nothing is written),
    1 when the database cannot be written, 2 for usage errors (missing file, no domain column),
    75 when another crawl or refresh holds the database's lock (nothing was done).

    With --redis URL the domains are queued for `detector worker`s on any machines instead
    (fetch options go to the workers); --wait then stores their results here, else run
    `detector ingest`. See "Many machines" in the README.
    """
    from detector.crawl.runner import run
    from detector.inputs import InputError, check_inputs, count_lines, has_lines

    if list(inputs).count("-") > 1:
        raise click.UsageError('"-" (stdin) can be given once.')
    try:
        check_inputs(inputs, options["column"])
        total = count_lines(inputs) or 0
        empty = not has_lines(inputs, options["column"])
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    if empty:
        click.echo(f"warning: {', '.join(inputs)}: no domains (only blank lines, comments or a header); "
                   "nothing was crawled or written.", err=True)
        return
    if options["redis_url"]:
        crawl_redis(ctx, inputs, {**options, "as_json": as_json})
        return
    if options["wait"]:
        raise click.UsageError("--wait goes with --redis URL (it waits for the workers' results).")
    check_database(options["db"])
    settings = crawl_settings(ctx, inputs, total, options)
    with reported():
        report = run(settings, command="crawl")
    print_summary(report.summary, as_json)


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
    from detector.crawl.runner import CrawlOptions, run
    from detector.demo import demo_domains_file, start_demo_server

    check_database(db)
    server = start_demo_server()
    try:
        domains = demo_domains_file()
        if not as_json:
            click.echo(f"Serving {len(server.sites)} example sites on {server.url}; crawling {domains} through it.", err=True)
        settings = CrawlOptions(
            inputs=(str(domains),), db=db, proxy=server.url, workers=workers, pages=2, timeout=5.0,
            retries=0, verbose=verbosity(ctx, verbose), progress=sys.stderr.isatty(), concurrency=16,
            dns=False,  # the demo's names exist only in its proxy; there is no DNS for them
        )
        with reported():
            report = run(settings, command="demo")
    finally:
        server.stop()
    print_summary(report.summary, as_json)
    if not as_json:
        click.echo("")
        click.echo("Try a query:")
        click.echo(
            f'  sqlite-utils {db} "select domain, technology, version, first_seen from detections '
            "where technology in (select name from technologies where categories like '%Ecommerce%')\" -t"
        )
        click.echo(f'  sqlite-utils {db} "select domain, status, error_kind, error_message from scans" -t')

