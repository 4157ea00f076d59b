"""``detector datasette-metadata`` (what Datasette needs to show a detector database well) and
``detector technologies`` (stored technologies of domains, in detect's formats)."""

from __future__ import annotations

import json
from typing import Any

import click

from detector.cli.formats import (
    format_options,
    line,
    resolve_format,
    wappalyzer_record,
    wappalyzer_technology,
)
from detector.cli.options import db_option


@click.command("datasette-metadata")
@db_option("The database the metadata describes (its file name keys the tables).")
def datasette_metadata(db: str) -> None:
    """Print Datasette metadata (titles, column help, facets, canned queries) as JSON.

    \b
    Example:
      detector datasette-metadata --db detector.db > metadata.json
      datasette detector.db --metadata metadata.json
    """
    from detector.store.datasette import metadata

    click.echo(json.dumps(metadata(db), indent=2))


@click.command("technologies")
@click.argument("domains", nargs=-1)
@db_option("SQLite database to read.")
@click.option("--technology", help="Only domains that run this technology (any case), e.g. Shopify.")
@click.option("--removed", is_flag=True, help="List removed technologies too (status shows which).")
@format_options("domain")
def technologies(domains: tuple[str, ...], db: str, technology: str | None, removed: bool, fmt: str | None,
                 as_json: bool, as_nl: bool) -> None:
    """List the stored technologies of domains (all, or those given), in detect's formats.

    \b
    Examples:
      detector technologies --db detector.db shop.test            # technologies of a domain
      detector technologies --db detector.db --technology Shopify --format line
      detector technologies --db detector.db --format wappalyzer > stack.jsonl

    Exit status: 0, 1 when the database cannot be read, 2 for usage errors.
    """
    from detector.cli.refresh import _known_technology, _open_existing
    from detector.store.query import category_ids, stored_technologies

    output = resolve_format(fmt, as_json, as_nl)
    database = _open_existing(db)
    try:
        found = stored_technologies(database, domains, technology=technology, removed=removed)
        ids = category_ids(database) if output == "wappalyzer" else {}
        unknown = _known_technology(database, technology, db) if technology and not found else None
    finally:
        database.close()
    listed = {d.domain for d in found}
    missing = [d for d in dict.fromkeys(x.strip().lower() for x in domains) if d not in listed]
    if missing and not technology:
        click.echo(f"note: not in {db}: {', '.join(missing)} (crawl them first: detector crawl FILE --db {db})",
                   err=True)
    if output == "json":
        click.echo(json.dumps([d.to_dict() for d in found], indent=2, ensure_ascii=False))
    elif output == "nl":
        for d in found:
            click.echo(json.dumps(d.to_dict(), ensure_ascii=False))
    elif output == "wappalyzer":
        for d in found:
            techs = [wappalyzer_technology(t.name, t.version, t.confidence, t.info,
                                           [(ids.get(c), c) for c in t.categories]) for t in d.technologies]
            click.echo(json.dumps(wappalyzer_record(d.final_url or f"https://{d.domain}/", d.http_status, techs),
                                  ensure_ascii=False))
    elif output == "line":
        for d in found:
            click.echo(line(d.domain, [(t.name, t.version) for t in d.technologies]))
    else:
        click.echo(_table(found))
    if unknown:
        click.echo(unknown, err=True)


def _table(found: list[Any]) -> str:
    if not found:
        return "No domains."
    rows = [(d.domain, t.name, t.version or "", t.status, t.first_seen[:10], t.last_seen[:10])
            for d in found for t in d.technologies]
    rows += [(d.domain, "(none)" if d.last_status == "ok" else f"(last scan: {d.last_status or 'never'})",
              "", "", "", "") for d in found if not d.technologies]
    rows.sort(key=lambda r: (r[0], r[1].lower()))
    head = ("domain", "technology", "version", "status", "first_seen", "last_seen")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [head, *rows]]
    return "\n".join(lines)
