"""``detector report``: one self-contained HTML page with charts about a database."""

from __future__ import annotations

from datetime import timedelta

import click

from detector.cli.options import db_option, reported
from detector.cli.refresh import DurationParam

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.command(context_settings=CONTEXT)
@db_option("SQLite database to report on.")
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The HTML file to write ('-' for stdout). An existing file is replaced.")
@click.option("--top", default=15, show_default=True, type=click.IntRange(1, 500),
              help="Technologies and categories in the adoption charts.")
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 520),
              help="Weeks of the changes chart (this one and the N-1 before it).")
@click.option("--rows", default=5000, show_default=True, type=click.IntRange(1),
              help="Domains listed in the table (the first N by name); the page says when some are left out.")
@click.option("--stale-after", default="30d", show_default=True, type=DurationParam(),
              help="Call data stale when its last successful scan or sighting is older than this.")
def report(db: str, output: str, top: int, weeks: int, rows: int, stale_after: timedelta) -> None:
    """Write one self-contained HTML report of the database, with charts.

    The page shows technology adoption (top N technologies and categories), cohort sizes by
    tier (once `detector segment` has run), technologies added and removed per week, scan
    health (ok versus error kinds, age of the data) and a searchable table of the domains.
    It loads nothing from the network (no CDN, no web fonts: the charts are inline SVG), reads
    well on a phone and prints.

    \b
    Examples:
      detector report --db detector.db -o report.html
      detector report --db /srv/detector.db --top 25 --weeks 26 -o /var/www/html/tech.html
      detector report -o - | gzip > report.html.gz

    Exit status: 0, 1 when the database does not exist or cannot be read, 2 for usage
    errors, 73 when the output file cannot be written (nothing was written).
    """
    from detector.report import ReportOptions, build_report, write_report

    options = ReportOptions(top=top, weeks=weeks, rows=rows, stale_after=stale_after)
    if output == "-":
        with reported():
            page, _, _ = build_report(db, options)
        click.echo(page, nl=False)
        return
    with reported():
        written = write_report(db, output, options)
    listed = (f"; the table lists {written.domains_listed:,} of them (--rows)"
              if written.domains_listed < written.domains else "")
    click.echo(f"Wrote {written.path} ({written.size / 1024:,.0f} KB): {written.domains:,} domain(s){listed}. "
               "Open it in any browser; it needs no network.", err=True)
