"""Command line interface: ``detector --help``.

The group and its commands, one module per command group.  Each command parses its options,
calls a library function and prints the report; library errors (DetectorError) become click
errors with the library's message (place, problem, fix) and the error's exit status: 1, or
the sysexits.h code of its cause (65 binary input, 66 missing input, 73 read-only database,
75 database locked by another run; see README "Exit status").
"""

from __future__ import annotations

import logging

import click

from detector.cli.crawl import crawl, demo
from detector.cli.detect import detect
from detector.cli.query import datasette_metadata
from detector.cli.refresh import changes, refresh, status
from detector.cli.report import report
from detector.cli.segment import accounts, segment
from detector.cli.signatures import signatures
from detector.cli.worker import ingest, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="detector")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Detect the technologies websites run, keep it fresh, and segment accounts."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


for command in (detect, signatures, crawl, refresh, changes, status, accounts, segment, demo, datasette_metadata,
                worker, ingest, report):
    cli.add_command(command)


def main() -> None:  # pragma: no cover - console entry point alias
    """Entry point for ``python -m detector``."""
    cli()
