"""Output formats shared by ``detect`` (pages) and ``technologies`` (stored domains).

``--format`` picks one: ``table`` (for people, the default), ``json`` (one array), ``nl`` (one
object per line), ``wappalyzer`` (one Wappalyzer-shaped object per line: ``urls`` and
``technologies`` with slug, website, icon, cpe and category ids) and ``line`` (one line per
page or domain, httpx-style: ``shop.test [Shopify,jQuery:3.7.1]``).  ``--json`` and ``--nl``
stay as short forms of ``--format json`` and ``--format nl``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

from detector.engine.signatures import slugify

FORMATS = ("table", "json", "nl", "wappalyzer", "line")

F = TypeVar("F", bound=Callable[..., Any])


def format_options(what: str) -> Callable[[F], F]:
    """``--format`` with ``--json`` and ``--nl`` as its short forms; ``what``: "page" or "domain"."""

    def decorate(func: F) -> F:
        func = click.option("--nl", "as_nl", is_flag=True, help="Same as --format nl.")(func)
        func = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(func)
        return click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default=None,
            help=f"table (default), json (one array), nl (one JSON object per {what} and line), wappalyzer "
                 f"(Wappalyzer's JSON fields, one object per {what} and line), line (one '{what} [Tech:version,"
                 "...]' line per " + what + ", as httpx prints it).",
        )(func)

    return decorate


def resolve_format(fmt: str | None, as_json: bool, as_nl: bool) -> str:
    """The one format the options ask for; a contradiction is a usage error.

    >>> resolve_format(None, True, False), resolve_format("line", False, False), resolve_format(None, False, False)
    ('json', 'line', 'table')
    """
    asked = {f for f, on in (("json", as_json), ("nl", as_nl)) if on} | ({fmt} if fmt else set())
    if len(asked) > 1:
        raise click.UsageError(f"choose one output format: {', '.join(sorted(asked))} were given "
                               "(--json is --format json, --nl is --format nl)")
    return asked.pop() if asked else "table"


def line(target: str, technologies: Iterable[tuple[str, str | None]]) -> str:
    """One httpx-style line: the page or domain, then its technologies with their versions.

    >>> line("shop.test", [("Shopify", None), ("jQuery", "3.7.1")])
    'shop.test [Shopify,jQuery:3.7.1]'
    >>> line("empty.test", [])
    'empty.test []'
    """
    return f"{target} [" + ",".join(f"{n}:{v}" if v else n for n, v in technologies) + "]"


def wappalyzer_technology(name: str, version: str | None, confidence: int, info: Mapping[str, Any],
                          categories: Sequence[tuple[int | None, str]]) -> dict[str, Any]:
    """One technology as Wappalyzer prints it: slug, name, description, confidence, version,
    icon, website, cpe and categories with their ids and slugs (None where the library has none).

    >>> t = wappalyzer_technology("Google Tag Manager", None, 100, {"website": "https://g.test"},
    ...                           [(42, "Tag managers")])
    >>> t["slug"], t["website"], t["icon"], t["categories"]
    ('google-tag-manager', 'https://g.test', None, [{'id': 42, 'slug': 'tag-managers', 'name': 'Tag managers'}])
    """
    return {
        "slug": slugify(name),
        "name": name,
        "description": info.get("description"),
        "confidence": confidence,
        "version": version or None,
        "icon": info.get("icon"),
        "website": info.get("website"),
        "cpe": info.get("cpe"),
        "categories": [{"id": cid, "slug": slugify(cname), "name": cname} for cid, cname in categories],
    }


def wappalyzer_record(url: str, status: int | None, technologies: list[dict[str, Any]]) -> dict[str, Any]:
    """Wappalyzer's object for one page (or domain): ``urls`` with the status, then ``technologies``."""
    return {"urls": {url: {"status": status}}, "technologies": technologies}
