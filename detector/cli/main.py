"""Command line interface: ``detector --help``.

Parses arguments, calls the library modules and prints; library errors (DetectorError)
become click errors with the library's message (place, problem, fix) and exit code 1.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from detector.cli.options import load_engine, signatures_option
from detector.errors import DetectorError


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


# ---------------------------------------------------------------------------- detect
@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--html", "html_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Analyse a saved HTML file ('-' for stdin) instead of fetching.")
@click.option("--url", "page_url", default="", help="The page's URL, for --html (url rules, script URLs).")
@click.option("--headers", "headers_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Response headers for --html: 'Name: value' lines or a JSON object.")
@click.option("--har", "har_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Analyse every HTML page of a HAR capture (with the scripts it loaded).")
@click.option("--cases", "cases_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="JSON Lines cases (id, url, status, headers, html), .gz or plain, '-' for stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.option("--nl", "as_nl", is_flag=True, help="Print one JSON object per page and line.")
@click.option("--timeout", default=15.0, show_default=True, help="Seconds per live fetch.")
@click.option("--min-confidence", default=0, show_default=True, help="Hide detections below this confidence.")
@signatures_option
def detect(
    urls: tuple[str, ...],
    html_file: Path | None,
    page_url: str,
    headers_file: Path | None,
    har_file: Path | None,
    cases_file: Path | None,
    as_json: bool,
    as_nl: bool,
    timeout: float,
    min_confidence: int,
    signature_dirs: tuple[str, ...],
) -> None:
    """Detect the technologies of pages: live URLs, a saved HTML file, a HAR or JSON Lines cases.

    \b
    Examples:
      detector detect https://example.com
      detector detect --html page.html --url https://example.com/ --headers headers.txt
      detector detect --cases pages.jsonl.gz --nl
    """
    sources = sum(bool(x) for x in (urls, html_file, har_file, cases_file))
    if sources != 1:
        raise click.UsageError("give URLs, or exactly one of --html, --har, --cases")
    if as_json and as_nl:
        raise click.UsageError("--json and --nl are exclusive")
    if (page_url or headers_file) and not html_file:
        raise click.UsageError("--url and --headers go with --html")
    engine = load_engine(signature_dirs)
    try:
        pages = _pages(urls, html_file, page_url, headers_file, har_file, cases_file, timeout)
        _emit(engine, pages, as_json, as_nl, min_confidence)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None


def _pages(urls: tuple[str, ...], html_file: Path | None, page_url: str, headers_file: Path | None,
           har_file: Path | None, cases_file: Path | None, timeout: float) -> Iterator[tuple[Any, Any]]:
    from detector.engine.cases import iter_cases, page_from_case, pages_from_har, read_headers_file
    from detector.engine.page import Page

    if cases_file is not None:
        for case in iter_cases(cases_file):
            yield case["id"], page_from_case(case)
    elif har_file is not None:
        yield from pages_from_har(har_file)
    elif html_file is not None:
        body = sys.stdin.buffer.read() if str(html_file) == "-" else _read_file(html_file)
        headers = read_headers_file(headers_file) if headers_file else {}
        yield str(html_file), Page.from_http(page_url, status=None, headers=headers, body=body)
    else:
        for url in urls:
            yield url, fetch_page(url, timeout)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read ({exc.strerror})") from None


def fetch_page(url: str, timeout: float) -> Any:
    """Fetch one page live (quick checks); errors say what failed and what to try instead."""
    from detector.engine.page import Page

    if "://" not in url:
        url = "https://" + url
    req = urllib.request.Request(url, headers={"User-Agent": "detector/0.1 (+https://github.com/detector)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(10 * 1024 * 1024)
            headers = [(k, v) for k, v in resp.headers.items()]
            return Page.from_http(resp.geturl(), status=resp.status, headers=headers, body=body)
    except urllib.error.HTTPError as exc:
        body = exc.read(10 * 1024 * 1024) if exc.fp else b""
        return Page.from_http(url, status=exc.code, headers=list(exc.headers.items()), body=body)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(
            f"{url}: could not fetch ({reason}). Are you offline? "
            "Analyse a saved page with --html FILE or --cases FILE instead."
        ) from None


def _emit(engine: Any, pages: Iterable[tuple[Any, Any]], as_json: bool, as_nl: bool, min_confidence: int) -> None:
    out = click.get_text_stream("stdout")
    collected = []
    first = True
    for ident, page in pages:
        found = [d for d in engine.detect(page) if d.confidence >= min_confidence]
        record = {"id": ident, "url": page.url, "technologies": [d.to_dict() for d in found]}
        if as_nl:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif as_json:
            collected.append(record)
        else:
            if not first:
                out.write("\n")
            first = False
            _print_table(out, ident, page.url, found)
    if as_json:
        out.write(json.dumps(collected, ensure_ascii=False, indent=2) + "\n")


def _print_table(out: Any, ident: Any, url: str, found: list[Any]) -> None:
    title = f"{ident}" if not url or str(ident) == url else f"{ident} ({url})"
    click.echo(click.style(title, bold=True) + f": {len(found)} technologies", file=out)
    if not found:
        return
    rows = [
        (d.technology, d.version or "", str(d.confidence), ", ".join(d.categories),
         d.evidence[0].describe() if d.evidence else "")
        for d in sorted(found, key=lambda d: (d.categories[:1], d.technology.lower()))
    ]
    widths = [max(len(r[i]) for r in rows + [("technology", "version", "conf", "categories", "")]) for i in range(4)]
    widths = [min(w, 40) for w in widths]
    head = ("technology", "version", "conf", "categories", "evidence")
    for row in [head] + rows:
        cells = [row[i][: widths[i]].ljust(widths[i]) for i in range(4)]
        click.echo("  " + "  ".join(cells) + "  " + row[4][:100], file=out)


# ---------------------------------------------------------------------------- signatures
@cli.group()
def signatures() -> None:
    """Work with the signature library: import, check, list, show."""


@signatures.command("import-wappalyzer")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("signatures-imported"),
              show_default=True, help="Directory to write the YAML library into.")
@click.option("--provenance", default=None, help="Provenance text stored in every signature.")
@click.option("--force", is_flag=True, help="Replace signatures already in the output directory.")
def import_wappalyzer_cmd(source: Path, output: Path, provenance: str | None, force: bool) -> None:
    """Convert Wappalyzer-format data (technologies JSON, categories.json, groups.json) to YAML.

    Load the result beside the bundled library with ``--signatures DIR``.
    Mind the licence of what you import: later Wappalyzer data is GPL-3.0.
    """
    from detector.engine.importer import import_wappalyzer

    try:
        n = import_wappalyzer(source, output, provenance=provenance, force=force)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {n} technologies to {output}/ (use: --signatures {output})")


@signatures.command("check")
@signatures_option
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option("--no-timing", is_flag=True, help="Skip the worst-case timing of patterns RE2 cannot run.")
def check_cmd(signature_dirs: tuple[str, ...], as_json: bool, no_timing: bool) -> None:
    """Check the library: schema, regexes, relations, duplicates, backtracking risk, examples.

    Exit status 1 when any problem is found; each problem names the file and the fix.
    """
    from detector.engine.checks import check_library

    report = check_library(list(signature_dirs) or None, timing=not no_timing)
    if as_json:
        click.echo(json.dumps({"problems": report.problems, "stats": report.stats}, indent=2))
    else:
        for p in report.problems:
            click.echo(p)
        s = report.stats
        click.echo(
            f"{s.get('technologies', 0)} technologies, {s.get('patterns', 0)} patterns "
            f"({s.get('re2', 0)} on RE2, {s.get('python', 0)} on Python re), {s.get('dom_selectors', 0)} DOM selectors, "
            f"{s.get('browser_rules', 0)} browser-only rules (js/xhr, not run), {s.get('network_rules', 0)} network rules "
            f"(dns/certIssuer/robots/probe, not run), {s.get('examples', 0)} examples: "
            f"{len(report.problems)} problem(s)"
        )
    sys.exit(1 if report.problems else 0)


@signatures.command("list")
@signatures_option
@click.option("--category", default=None, help="Only technologies of this category (name, case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(signature_dirs: tuple[str, ...], category: str | None, as_json: bool) -> None:
    """List technologies (name and categories)."""
    from detector.engine.signatures import load_signatures

    try:
        lib = load_signatures(list(signature_dirs) or None)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    if category and lib.category_by_name(category) is None:
        import difflib

        hint = difflib.get_close_matches(category, [c.name for c in lib.categories.values()], n=1)
        raise click.BadParameter(f"unknown category {category!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                                 param_hint="--category")
    rows = [s for s in sorted(lib.signatures.values(), key=lambda s: s.name.lower())
            if not category or category.lower() in (c.lower() for c in s.categories)]
    if as_json:
        click.echo(json.dumps([{"name": s.name, "categories": list(s.categories)} for s in rows], indent=2))
        return
    for s in rows:
        click.echo(f"{s.name}\t{', '.join(s.categories)}")


@signatures.command("show")
@click.argument("name")
@signatures_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(name: str, signature_dirs: tuple[str, ...], as_json: bool) -> None:
    """Show one technology's signature as stored (file, provenance, rules)."""
    import difflib

    from detector.engine.importer import dump_yaml
    from detector.engine.signatures import load_signatures

    try:
        lib = load_signatures(list(signature_dirs) or None)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    sig = lib.signatures.get(name) or next((s for s in lib.signatures.values() if s.name.lower() == name.lower()), None)
    if sig is None:
        hint = difflib.get_close_matches(name, list(lib.signatures), n=3)
        raise click.ClickException(f"no technology named {name!r}" + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
    if as_json:
        click.echo(json.dumps({"file": sig.path, **dict(sig.raw)}, indent=2, ensure_ascii=False))
        return
    click.echo(f"# {sig.path}")
    click.echo(dump_yaml(dict(sig.raw)), nl=False)



from detector.cli.segment import accounts, segment

cli.add_command(accounts)
cli.add_command(segment)

from detector.cli.crawl import crawl, demo

cli.add_command(crawl)

from detector.cli.refresh import changes, refresh, status

cli.add_command(refresh)
cli.add_command(changes)
cli.add_command(status)
cli.add_command(demo)

def main() -> None:  # pragma: no cover - console entry point alias
    """Entry point for ``python -m detector``."""
    cli()
