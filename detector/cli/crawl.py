"""``detector crawl`` and ``detector demo``: crawl a domain list into SQLite, or the demo sites."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from detector.cli.options import (
    check_database,
    crawl_options,
    crawl_settings,
    db_option,
    exit_for,
    print_summary,
    reported,
    verbosity,
)
from detector.cli.worker import crawl_redis, enqueue_options
from detector.errors import DetectorError


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
    input held no domains (a warning; nothing is written), 1 when the run failed, 2 for usage
    errors (bad option value, no domain column), 65 when an input is not text, 66 when an
    input file is missing, 73 when the database is read-only, 75 when another crawl or
    refresh holds the database's lock (nothing was done).

    With --redis URL the domains are queued for `detector worker`s on any machines instead
    (fetch options go to the workers); --wait then stores their results here, else run
    `detector ingest`. See "Many machines" in the README.
    """
    from detector.crawl.runner import run
    from detector.inputs import InputError, check_inputs, count_lines, has_lines

    if list(inputs).count("-") > 1:
        raise click.UsageError('"-" (stdin) can be given once.')
    try:
        for warning in check_inputs(inputs, options["column"]):
            click.echo(warning, err=True)
        total = count_lines(inputs) or 0
        empty = not has_lines(inputs, options["column"])
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    except DetectorError as exc:
        raise exit_for(exc) from None
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
@click.option("--serve", is_flag=True,
              help="Do not crawl: keep the example sites up on a local proxy until interrupted (Ctrl-C), "
              "and print the --proxy value to reach them with (first line of stdout).")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the proxy on 127.0.0.1 (0: any free port).")
@click.pass_context
def demo(ctx: click.Context, db: str, as_json: bool, workers: int, verbose: int, serve: bool, port: int) -> None:
    """Crawl a dozen bundled example sites offline (served on 127.0.0.1) into demo.db.

    With --serve, only serve them (until Ctrl-C or SIGTERM) so that the README's examples
    can be run as written, in another terminal, with the --proxy value it prints.

    \b
    Examples:
      detector demo && sqlite-utils demo.db "select domain, technology from detections"
      detector demo --serve --port 8080    # then: detector crawl FILE --proxy http://127.0.0.1:8080 --no-dns
    """
    from detector.crawl.runner import CrawlOptions, run
    from detector.demo import demo_domains_file

    if serve:
        _serve(port)
        return
    check_database(db)
    server = _start(port)
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


def _start(port: int) -> Any:
    """The demo proxy, or a one-line error when its port is taken."""
    from detector.demo import start_demo_server

    try:
        return start_demo_server(port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise click.ClickException(
            f"cannot serve the example sites on 127.0.0.1:{port} ({reason}); "
            "pick another --port, or 0 for any free one"
        ) from None


def _serve(port: int) -> None:
    """``demo --serve``: the example sites on a local proxy until SIGINT/SIGTERM."""
    from detector.demo import demo_domains_file, wait_until_stopped

    server = _start(port)
    try:
        click.echo(f"--proxy {server.url}")  # first line of stdout: what to give crawl/refresh/detect
        sys.stdout.flush()
        names = ", ".join(sorted(server.sites))
        click.echo(f"Serving {len(server.sites)} example sites on {server.url} until interrupted (Ctrl-C): "
                   f"{names}.", err=True)
        click.echo(f"Crawl them through it, e.g.: detector crawl {demo_domains_file()} --db demo.db "
                   f"--proxy {server.url} --no-dns (their names exist only in this proxy)", err=True)
        stopped_by = wait_until_stopped()
    finally:
        server.stop()
    click.echo(f"Stopped ({stopped_by}); served {server.proxy.requests} requests.", err=True)