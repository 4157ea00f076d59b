"""``detector datasette-metadata``: what Datasette needs to show a detector database well."""

from __future__ import annotations

import json

import click

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
