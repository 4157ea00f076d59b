"""Options and helpers the commands share: ``--db``, ``--signatures``, the crawl options that
``crawl`` and ``refresh`` both take, error reporting, the end-of-run summary."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from detector.crawl.settings import DETECTOR_RENDER_BUDGET
from detector.errors import EX_TEMPFAIL, DetectorError
from detector.store.history import DEFAULT_MISS_THRESHOLD

if TYPE_CHECKING:
    from detector.crawl.runner import CrawlOptions

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "detector.db"


class DetectorExit(click.ClickException):
    """A library error as click shows it (``Error: message``), with the error's exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click reads ``exit_code`` from the instance; click 8.5 types it as a class variable,
        # so it is set without an annotation-checked assignment (both 8.4 and 8.5 pass mypy).
        setattr(self, "exit_code", exit_code)  # noqa: B010


class LockedExit(DetectorExit):
    """Another run holds the database's lock: exit 75 (EX_TEMPFAIL) with the holder named."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EX_TEMPFAIL)


def exit_for(exc: DetectorError, hint: str | None = None) -> DetectorExit:
    """The click error for a library error: its message (and a hint after it) and its exit
    status (1, 65, 66, 73, 75)."""
    code = int(getattr(exc, "exit_code", 1))
    message = f"{exc} {hint}" if hint else str(exc)
    return LockedExit(message) if code == EX_TEMPFAIL else DetectorExit(message, code)


class InputPath(click.Path):
    """An input file argument or option: ``-`` is stdin; a missing file exits 66 (EX_NOINPUT),
    as every missing input does, with the same message."""

    def __init__(self, hint: Callable[[], str | None] | None = None, *, allow_dash: bool = True,
                 path_type: type[Any] | None = None) -> None:
        super().__init__(dir_okay=False, allow_dash=allow_dash, path_type=path_type)
        self.hint = hint

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, checked to exist (unless ``-``)."""
        from detector.textinput import check_readable

        if str(value) != "-" or not self.allow_dash:
            try:
                check_readable(str(value))
            except DetectorError as exc:
                raise exit_for(exc, self.hint() if self.hint else None) from None
        return super().convert(value, param, ctx)


def db_option(help: str, default: str = DEFAULT_DB, dest: str = "db") -> Callable[[F], F]:
    """``--db PATH``: the SQLite database a command reads or writes."""
    return click.option("--db", dest, default=default, show_default=True, type=click.Path(dir_okay=False),
                        help=help)


def signatures_option(func: F) -> F:
    """``--signatures DIR`` (repeatable; later directories override earlier ones by name)."""
    return click.option(
        "--signatures",
        "signature_dirs",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="Signature directory (repeatable; later ones override earlier ones by name). "
        "Default: the bundled library.",
    )(func)


def compat_option(func: F) -> F:
    """``--compat wappalyzer``: run the engine in the reference engine's mode."""
    return click.option(
        "--compat", type=click.Choice(["wappalyzer"]), default=None,
        help="Reproduce another engine's results: 'wappalyzer' matches as the reference engine "
        "does (no script_loader source, no rules of evidence).",
    )(func)


def engine_mode(compat: str | None) -> str:
    """The engine mode for a ``--compat`` value (None: the default mode).

    >>> engine_mode(None), engine_mode("wappalyzer")
    ('detector', 'wappalyzer')
    """
    return compat or "detector"


def load_engine(signature_dirs: Iterable[str], accelerate: bool = True, mode: str = "detector") -> Any:
    """Load (and so validate) the engine, turning library errors into click errors."""
    from detector.engine.match import Engine

    try:
        return Engine.from_directories(list(signature_dirs) or None, accelerate=accelerate, mode=mode)
    except DetectorError as exc:
        raise exit_for(exc) from None


@contextmanager
def reported() -> Iterator[None]:
    """Turn the library's errors into click errors: the message and the error's exit status."""
    try:
        yield
    except DetectorError as exc:
        raise exit_for(exc) from None


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


#: --max-size bounds: 0 would mean "no limit" to Scrapy, and a page over 1 GB is no page.
MIN_SIZE, MAX_SIZE = 1024, 1024**3


class SizeParam(click.ParamType):  # type: ignore[type-arg]
    """A byte size such as ``5MB``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse or fail with a usage error."""
        try:
            size = value if isinstance(value, int) else parse_size(str(value))
        except ValueError:
            self.fail(f'"{value}" is not a size; write it like 5MB, 500k or 1048576', param, ctx)
        if not MIN_SIZE <= size <= MAX_SIZE:
            self.fail(f'"{value}" is out of range; give a size from 1k to 1GB, like 5MB', param, ctx)
        return size


def verbosity(ctx: click.Context, verbose: int) -> int:
    """``-v`` given here or on the main group (``detector -v crawl``), whichever says more."""
    parent = ctx.find_root().obj
    inherited = parent.get("verbose", 0) if isinstance(parent, dict) else 0
    return max(verbose, int(inherited or 0))


#: The crawl options that say how to fetch and detect: with ``--redis`` they are the workers'.
FETCH_OPTIONS = ("allow_private", "pages", "concurrency", "per_site", "timeout", "retries", "max_size",
                 "user_agent", "proxy", "dns", "resolver", "ignore_robots", "no_detect", "workers", "compat",
                 "render", "render_concurrency", "render_timeout", "render_budget")


def render_option(func: F) -> F:
    """``--render off|auto|on``: the rendered tier (Chromium) for js, dom and xhr rules."""
    return click.option(
        "--render", type=click.Choice(["off", "auto", "on"]), default="auto", show_default=True,
        envvar="DETECTOR_RENDER",
        help="Render landing pages in Chromium for js/dom/xhr rules: on (every site), auto (where the "
        "static pass says it pays off; static only, with a warning, without Chromium), off.",
    )(func)


def crawl_options(func: F) -> F:
    """Every option of ``detector crawl`` except the input files; ``refresh`` takes them too."""
    for option in reversed(_crawl_options()):
        func = option(func)
    return func


def fetch_options(func: F) -> F:
    """The options of :data:`FETCH_OPTIONS` (``detector worker`` takes these), plus ``-v``."""
    chosen = {*FETCH_OPTIONS, "signature_dirs", "progress", "verbose"}
    for option in reversed(_crawl_options()):
        if option.__name__ in chosen:
            func = option(func)
    return func


def _named(option: Callable[[F], F]) -> Callable[[F], F]:
    """The option, named (``__name__``) after the parameter it adds."""
    def probe() -> None:
        pass

    params = getattr(option(probe), "__click_params__", [])  # type: ignore[arg-type]
    option.__name__ = params[0].name if params else ""
    return option


def _crawl_options() -> list[Callable[[F], F]]:
    options = [
        db_option("SQLite database to write (created and migrated)."),
        click.option("--column", help="CSV/TSV column holding the domain (name or 1-based number). Default: auto-detect domain/website/url."),
        click.option("--keep-subdomains", is_flag=True, help="Crawl blog.example.com as given instead of example.com."),
        click.option("--allow-ip", is_flag=True, help="Accept IP addresses as well as domain names."),
        click.option("--allow-private", is_flag=True, help="Also connect to private, loopback, link-local and metadata addresses (intranet inventories; off: such domains and redirects fail as blocked_address)."),
        click.option("--pages", default=2, show_default=True, type=click.IntRange(0, 20), help="Extra same-site pages per domain (pricing, shop, login, careers, contact, blog)."),
        click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1000), help="Requests in flight over all sites."),
        click.option("--per-site", default=2, show_default=True, type=click.IntRange(1, 16), help="Requests in flight per site."),
        click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(0.1, 600), help="Seconds per request."),
        click.option("--retries", default=1, show_default=True, type=click.IntRange(0, 10), help="Retries after a timeout or connection error."),
        click.option("--max-size", default="5MB", show_default=True, type=SizeParam(), help="Largest response body; bigger ones fail as too_large."),
        click.option("--user-agent", help="User-Agent header to send."),
        click.option("--proxy", help="Send all traffic through this HTTP proxy (https by CONNECT), e.g. http://proxy:3128. "
                     "DNS cannot go through it: give --resolver too, or --no-dns."),
        click.option("--dns/--no-dns", "dns", default=True, show_default=True,
                     help="Look up each domain's MX, TXT, NS, SOA, _dmarc TXT and www CNAME (email, SaaS and hosting evidence)."),
        click.option("--resolver", metavar="HOST[:PORT]", help="DNS server to ask (an IP address, port 53 by default). "
                     "Default: the system's; names under .test/.example/.invalid/.localhost/.local go only to a named one."),
        click.option("--ignore-robots/--obey-robots", default=False, help="Do not obey robots.txt (--obey-robots: do, the default; for a refresh after a crawl that ignored it)."),
        click.option("--no-detect", is_flag=True, help="Fetch and record scans without running the engine."),
        click.option("--workers", default=-1, show_default=True, type=click.IntRange(-1, 64), help="Engine processes beside the crawler (-1: one per CPU; 0: in the crawler process)."),
        signatures_option,
        compat_option,
        click.option("--json", "as_json", is_flag=True, help="Print the end summary as JSON."),
        click.option("--progress/--no-progress", default=None, help="Live progress on stderr (default: when stderr is a terminal)."),
        click.option("-v", "--verbose", count=True, help="Show Scrapy's log (-vv for debug)."),
        render_option,
        click.option("--render-concurrency", default=4, show_default=True, type=click.IntRange(1, 32), help="Pages rendered at once (the rendered tier's own budget)."),
        click.option("--render-budget", default=DETECTOR_RENDER_BUDGET, show_default=True, type=click.FloatRange(0.0), help="With --render auto: Chromium may use at most this share of the CPU time the static crawl uses; sites beyond it stay static, are recorded as render 'skipped' and are first in line next time (0: no budget)."),
        click.option("--render-timeout", default=10.0, show_default=True, type=click.FloatRange(1.0), help="Seconds per rendered page; a page not done by then is closed and recorded."),
        click.option("--miss-threshold", default=DEFAULT_MISS_THRESHOLD, show_default=True, type=click.IntRange(1, 100), help="Consecutive complete, successful scans that must miss a technology before it is marked removed."),
    ]
    return [_named(o) for o in options]


def check_signatures(signature_dirs: tuple[str, ...], no_detect: bool, mode: str = "detector") -> None:
    """Compile ``--signatures`` once, so a bad pattern stops the run before anything is fetched."""
    if signature_dirs and not no_detect:
        load_engine(signature_dirs, mode=mode)


def check_proxy(proxy: str | None) -> None:
    """A usage error unless ``--proxy`` looks like ``http://host:port``."""
    if proxy and not re.match(r"^https?://[^/\s]+/?$", proxy):
        raise click.BadParameter(f'"{proxy}" is not a proxy URL; write it like http://proxy.example:3128', param_hint="--proxy")

def check_dns(dns: bool, resolver: str | None, proxy: str | None) -> None:
    """A usage error for a bad ``--resolver``, or ``--proxy`` with DNS on and no resolver named."""
    from detector.crawl.dns import ResolverError, parse_resolver

    if resolver:
        try:
            parse_resolver(resolver)
        except ResolverError as exc:
            raise click.BadParameter(str(exc), param_hint="--resolver") from None
    if proxy and dns and not resolver:
        raise click.UsageError(
            "--proxy: DNS lookups cannot go through an HTTP proxy, and the system resolver may not be "
            "the proxy's. Name a DNS server with --resolver HOST[:PORT], or turn DNS off with --no-dns."
        )


def crawl_settings(ctx: click.Context, inputs: tuple[str, ...], total: int, options: dict[str, Any]) -> CrawlOptions:
    """The library's CrawlOptions from the values of :func:`crawl_options` (checked first)."""
    from detector.crawl.runner import CrawlOptions

    check_proxy(options["proxy"])
    mode = engine_mode(options["compat"])
    check_signatures(options["signature_dirs"], options["no_detect"], mode)
    check_dns(options["dns"], options["resolver"], options["proxy"])
    progress = options["progress"]
    return CrawlOptions(
        inputs=inputs, db=options["db"], column=options["column"], keep_subdomains=options["keep_subdomains"],
        allow_ip=options["allow_ip"], allow_private=options["allow_private"], pages=options["pages"], concurrency=options["concurrency"],
        per_site=options["per_site"], timeout=options["timeout"], retries=options["retries"],
        max_size=options["max_size"], user_agent=options["user_agent"], proxy=options["proxy"],
        ignore_robots=options["ignore_robots"], detect=not options["no_detect"], workers=options["workers"],
        signatures=tuple(options["signature_dirs"]), verbose=verbosity(ctx, options["verbose"]),
        progress=sys.stderr.isatty() if progress is None else progress, total=total,
        miss_threshold=options["miss_threshold"], engine_mode=mode, dns=options["dns"],
        resolver=options["resolver"], render=options["render"],
        render_concurrency=options["render_concurrency"], render_timeout=options["render_timeout"],
        render_budget=options["render_budget"],
    )


def check_database(db: str) -> None:
    """Open (create, migrate) the database once, so a bad --db fails before anything else."""
    from detector.store.store import Store

    with reported():
        Store.open(db, writable=True).close()


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """The end-of-run summary: JSON, or text for people."""
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


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
    render = dict(s.get("render") or {})
    if render:
        skipped = render.pop("skipped", 0)
        parts = [", ".join(f"{n:,} {outcome}" for outcome, n in render.items())] if render else []
        if skipped:
            parts.append(f"{skipped:,} left static over the render budget (first in line next time; "
                         "--render-budget 0 renders them all)")
        lines.append("Rendered in Chromium: " + "; ".join(parts) + ".")
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
