"""``detector signatures``: import Wappalyzer-format data, check, list and show the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import click

from detector.cli.options import signatures_option
from detector.errors import DetectorError


@click.group()
def signatures() -> None:
    """Work with the signature library: import, check, test, list, show, coverage."""


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
            f"{s.get('browser_rules', 0)} browser-only rules (js/xhr/dom properties, run by --render), {s.get('network_rules', 0)} network rules "
            f"(dns/certIssuer: run by the crawl's DNS tier; robots/probe: not run), {s.get('examples', 0)} examples: "
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
        extra = {"overrides": sig.overrides} if sig.overrides else {}
        click.echo(json.dumps({"file": sig.path, **extra, **dict(sig.raw)}, indent=2, ensure_ascii=False))
        return
    click.echo(f"# {sig.path}")
    if sig.overrides:
        click.echo(f"# replaces the imported definition in {sig.overrides}")
    click.echo(dump_yaml(dict(sig.raw)), nl=False)


@signatures.command("test")
@click.argument("names", nargs=-1)
@signatures_option
@click.option("--json", "as_json", is_flag=True, help="Print every example's result as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Also list the examples that pass, with their evidence.")
def test_cmd(names: tuple[str, ...], signature_dirs: tuple[str, ...], as_json: bool, verbose: bool) -> None:
    """Run the examples of technologies NAME... (default: every technology that has examples).

    A `match` page must detect the technology (with its `version` when the example gives
    one), a `no_match` page must not. Our own rules (signatures/detector/) run in the default
    mode, imported ones in the "wappalyzer" mode. Exit status 1 when an example fails or a
    NAME is unknown.

    Example: detector signatures test HubSpot "Microsoft Clarity"
    """
    import difflib

    from detector.engine.checks import run_examples
    from detector.engine.signatures import load_signatures

    try:
        lib = load_signatures(list(signature_dirs) or None)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    by_lower = {n.lower(): n for n in lib.signatures}
    chosen: list[str] = []
    for name in names:
        real = by_lower.get(name.lower())
        if real is None:
            hint = difflib.get_close_matches(name, list(lib.signatures), n=3)
            raise click.ClickException(f"no technology named {name!r}" + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
        if not lib.signatures[real].examples:
            raise click.ClickException(f"{real!r} has no examples ({lib.signatures[real].path}); add match/no_match examples")
        chosen.append(real)
    results = run_examples(lib, chosen or None)
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            if r.ok and not verbose:
                continue
            click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.where} {r.expect} ({r.mode} mode)" + (f": {r.reason}" if r.reason else ""))
            for line in r.evidence if (verbose or not r.ok) else ():
                click.echo(f"       {line}")
        techs = len({r.technology for r in results})
        click.echo(f"{len(results)} examples of {techs} technologies: {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


@signatures.command("coverage")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@signatures_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per name, in an array.")
def coverage_cmd(file: TextIO, signature_dirs: tuple[str, ...], as_json: bool) -> None:
    """Report what the library has for each technology FILE names (`-` reads stdin).

    FILE lists names one a line, or is a CSV whose first column is the name (a header row
    is skipped). Names match case-insensitively; near misses get suggestions. For each: found,
    the rule kinds, how many examples, and whether only a browser can see it (its only rules
    are js/xhr or DOM properties: a crawler that runs no JavaScript never detects it).
    Exit status 0 whatever is missing; 1 when FILE names nothing.

    Example: printf 'HubSpot\\nPardot\\n6sense\\n' | detector signatures coverage -
    """
    from detector.engine.coverage import coverage, read_names
    from detector.engine.signatures import load_signatures

    names = read_names(file.read())
    if not names:
        where = getattr(file, "name", "-")
        raise click.ClickException(f"{'stdin' if where in ('-', '<stdin>') else where}: no technology names found; write one name a line (or CSV, name first)")
    try:
        lib = load_signatures(list(signature_dirs) or None)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    rows = coverage(lib, names)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    for r in rows:
        if not r.found:
            hint = f"; did you mean {', '.join(map(repr, r.suggestions))}?" if r.suggestions else ""
            click.echo(f"{r.asked}\tMISSING{hint}")
            continue
        seen = "NEEDS A BROWSER" if r.needs_browser else "static" if r.static_kinds else "not run (network rules only)"
        own = ", own rules" if r.layer else ""
        name = r.name if r.name == r.asked else f"{r.asked} (= {r.name})"
        click.echo(f"{name}\t{seen}\tkinds: {', '.join(r.kinds) or '-'}\texamples: {r.examples}{own}")
    found = sum(r.found for r in rows)
    static = sum(bool(r.found and r.static_kinds) for r in rows)
    click.echo(f"{len(rows)} names: {found} in the library, {static} seen by a crawler without JavaScript, "
               f"{sum(r.needs_browser for r in rows)} need a browser, {len(rows) - found} missing")
