"""A crawl run from Python: ``run(CrawlOptions(...))`` returns a :class:`CrawlReport`.

:func:`run` is what ``detector crawl`` does: hold the database's lock, record the run in
``runs``, crawl, record how it ended, and summarise it from the database.  :func:`run_crawl`
is the bare Scrapy run underneath.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field, fields
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from detector.crawl.pipelines import new_run_id
from detector.crawl.settings import DETECTOR_RENDER_BUDGET
from detector.errors import DetectorError


def network(default: Any) -> Any:
    """A CrawlOptions field about reaching the sites (proxy, user agent, timeouts, pages...):
    recorded with the run, and reused by ``refresh`` from the last crawl unless given again."""
    return field(default=default, metadata={"network": True})


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """Everything a crawl run can be told; defaults match ``detector crawl``."""

    inputs: tuple[str, ...]
    db: str = "detector.db"
    column: str | None = None
    keep_subdomains: bool = False
    allow_ip: bool = False
    allow_private: bool = False
    # How to reach the sites: recorded with each run, and reused by `refresh` unless given again
    # (see network_options()).  A new option of this kind says so with network(...).
    pages: int = network(2)
    concurrency: int = network(16)
    per_site: int = network(2)
    timeout: float = network(15.0)
    retries: int = network(1)
    max_size: int = network(5 * 1024 * 1024)
    user_agent: str | None = network(None)
    proxy: str | None = network(None)
    ignore_robots: bool = network(False)
    detect: bool = True
    workers: int = -1
    signatures: tuple[str, ...] = ()
    verbose: int = 0
    progress: bool = False
    total: int = 0
    run_id: str = ""
    miss_threshold: int = 2
    #: The engine's mode: "detector" (the default) or "wappalyzer" (the reference engine's
    #: results, ``--compat wappalyzer``).  Recorded with the run (``runs.options``).
    engine_mode: str = "detector"
    dns: bool = network(True)
    resolver: str | None = network(None)
    #: The rendered tier: "off", "auto", "on"; None: DETECTOR_RENDER's default (auto).
    render: str | None = network(None)
    render_concurrency: int = network(4)
    render_timeout: float = network(10.0)
    #: ``--render auto``'s budget: browser CPU at most this share of the crawl's (0: none).
    render_budget: float = network(DETECTOR_RENDER_BUDGET)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from detector.engine.match import MODES

        if self.engine_mode not in MODES:
            raise ValueError(f"unknown engine mode {self.engine_mode!r}; use one of {', '.join(MODES)}")


def build_settings(opts: CrawlOptions) -> Settings:
    """Scrapy settings: detector.crawl.settings overridden by the options."""
    settings = Settings()
    settings.setmodule("detector.crawl.settings", priority="project")
    values: dict[str, Any] = {
        "DETECTOR_INPUT": ",".join(opts.inputs),
        "DETECTOR_DB": opts.db,
        "DETECTOR_COLUMN": opts.column or "",
        "DETECTOR_KEEP_SUBDOMAINS": opts.keep_subdomains,
        "DETECTOR_ALLOW_IP": opts.allow_ip,
        "DETECTOR_ALLOW_PRIVATE": opts.allow_private,
        "DETECTOR_PAGES": opts.pages,
        "DETECTOR_PROXY": opts.proxy or "",
        "DETECTOR_DETECT": opts.detect,
        "DETECTOR_DETECT_WORKERS": opts.workers,
        "DETECTOR_SIGNATURES": list(opts.signatures),
        "DETECTOR_PROGRESS": opts.progress,
        "DETECTOR_TOTAL": opts.total,
        "DETECTOR_RUN_ID": opts.run_id,
        "DETECTOR_MISS_THRESHOLD": opts.miss_threshold,
        "DETECTOR_ENGINE_MODE": opts.engine_mode,
        "DETECTOR_DNS": opts.dns,
        "DETECTOR_RESOLVER": opts.resolver or "",
        "CONCURRENT_REQUESTS": opts.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": opts.per_site,
        "DOWNLOAD_TIMEOUT": opts.timeout,
        "DNS_TIMEOUT": min(opts.timeout, 10),
        "RETRY_TIMES": opts.retries,
        "RETRY_ENABLED": opts.retries > 0,
        "DOWNLOAD_MAXSIZE": opts.max_size,
        "ROBOTSTXT_OBEY": not opts.ignore_robots,
    }
    if opts.render is not None:
        values["DETECTOR_RENDER"] = opts.render
    values["DETECTOR_RENDER_CONCURRENCY"] = opts.render_concurrency
    values["DETECTOR_RENDER_TIMEOUT"] = opts.render_timeout
    values["DETECTOR_RENDER_BUDGET"] = opts.render_budget
    if opts.user_agent:
        values["USER_AGENT"] = opts.user_agent
    if opts.verbose >= 2:
        values["LOG_LEVEL"] = "DEBUG"
    elif opts.verbose == 1:
        values["LOG_LEVEL"] = "INFO"
    else:
        # Quiet: Scrapy says nothing; invalid input lines still reach stderr (see run_crawl).
        values["LOG_ENABLED"] = False
    values.update(opts.extra)
    settings.setdict(values, priority="cmdline")
    return settings


def options_from_settings(settings: Any) -> dict[str, Any]:
    """What a run records in ``runs.options``, read back from Scrapy settings (the inverse of
    :func:`build_settings`, for ``scrapy crawl domains``, which has no CrawlOptions)."""
    defaults = CrawlOptions(inputs=())
    return {
        "db": settings.get("DETECTOR_DB"),
        "column": settings.get("DETECTOR_COLUMN") or None,
        "keep_subdomains": settings.getbool("DETECTOR_KEEP_SUBDOMAINS"),
        "allow_ip": settings.getbool("DETECTOR_ALLOW_IP"),
        "pages": settings.getint("DETECTOR_PAGES", defaults.pages),
        "concurrency": settings.getint("CONCURRENT_REQUESTS", defaults.concurrency),
        "per_site": settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", defaults.per_site),
        "timeout": settings.getfloat("DOWNLOAD_TIMEOUT", defaults.timeout),
        "retries": settings.getint("RETRY_TIMES", defaults.retries) if settings.getbool("RETRY_ENABLED", True) else 0,
        "max_size": settings.getint("DOWNLOAD_MAXSIZE", defaults.max_size),
        "user_agent": settings.get("USER_AGENT") or None,
        "proxy": settings.get("DETECTOR_PROXY") or None,
        "ignore_robots": not settings.getbool("ROBOTSTXT_OBEY", True),
        "detect": settings.getbool("DETECTOR_DETECT", True),
        "workers": settings.getint("DETECTOR_DETECT_WORKERS", defaults.workers),
        "signatures": list(settings.getlist("DETECTOR_SIGNATURES")),
        "miss_threshold": settings.getint("DETECTOR_MISS_THRESHOLD", defaults.miss_threshold),
        "allow_private": settings.getbool("DETECTOR_ALLOW_PRIVATE"),
        "engine_mode": settings.get("DETECTOR_ENGINE_MODE") or defaults.engine_mode,
        "dns": settings.getbool("DETECTOR_DNS", defaults.dns),
        "resolver": settings.get("DETECTOR_RESOLVER") or None,
        "render": settings.get("DETECTOR_RENDER") or None,
        "render_concurrency": settings.getint("DETECTOR_RENDER_CONCURRENCY", defaults.render_concurrency),
        "render_timeout": settings.getfloat("DETECTOR_RENDER_TIMEOUT", defaults.render_timeout),
        "render_budget": settings.getfloat("DETECTOR_RENDER_BUDGET", defaults.render_budget),
    }


class CrawlError(DetectorError):
    """The crawl could not run (database, engine workers); nothing was crawled."""


@dataclass(frozen=True, slots=True)
class CrawlReport:
    """What a finished run did: its id, the crawler's stats and (from :func:`run`) its summary.

    ``summary`` holds the database's counts for the run (domains ok and failed, failures by
    kind, pages, technologies, top technologies, changes) plus input and timing figures.
    """

    run_id: str
    invalid_lines: int
    stats: dict[str, Any]
    status: str = "done"
    summary: dict[str, Any] = field(default_factory=dict)


def run(options: CrawlOptions, *, command: str = "crawl", planned: int | None = None) -> CrawlReport:
    """Crawl ``options.inputs`` into ``options.db`` under a ``runs`` row; report with a summary.

    Holds the database's lock for the whole run (raises
    :class:`~detector.store.lock.LockedError` at once if another run holds it).  The run ends
    ``done``, ``interrupted`` (SIGTERM/SIGINT: Scrapy stops gracefully, unfinished domains got
    error rows) or ``failed`` (it raised).  Runs the Twisted reactor: once per process.
    """
    from detector.store.freshness import change_counts
    from detector.store.scans import run_summary
    from detector.store.store import Store

    run_id = options.run_id or new_run_id()
    options = CrawlOptions(**{**_as_dict(options), "run_id": run_id})
    recorded = {k: v for k, v in _as_dict(options).items()
                if k not in ("verbose", "progress", "total", "inputs", "run_id", "extra")}
    started = time.monotonic()
    status = "failed"
    with Store.open(options.db, lock=command) as store:
        store.close_dead_runs()  # we hold the lock: a run still "running" is dead
        store.start_run(run_id, command, planned=planned, options=recorded)
        try:
            report = run_crawl(options)
            status = "interrupted" if report.stats.get("finish_reason") == "shutdown" else "done"
        finally:
            store.finish_run(run_id, status)
        summary = run_summary(store.db, run_id)
        summary["changes"] = change_counts(store.db, run_id)
    elapsed = round(time.monotonic() - started, 2)
    report.stats["elapsed_seconds"] = elapsed
    summary.update(command=command, invalid_lines=report.invalid_lines, elapsed_seconds=elapsed,
                   database=options.db)
    return CrawlReport(run_id, report.invalid_lines, report.stats, status, summary)


def run_crawl(opts: CrawlOptions, spider: str | type[Any] = "domains") -> CrawlReport:
    """Crawl the domains of ``opts.inputs`` into ``opts.db``; report the run id and stats.

    ``spider``: the spider (name or class); the distributed worker passes its queue spider.
    Runs the Twisted reactor, so it can be called once per process.
    """
    run_id = opts.run_id or new_run_id()
    opts = CrawlOptions(**{**_as_dict(opts), "run_id": run_id})
    settings = build_settings(opts)
    handler: logging.Handler | None = None
    if not opts.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        for name in ("detector.input", "detector.signatures"):
            quiet_log = logging.getLogger(name)
            quiet_log.addHandler(handler)
            quiet_log.setLevel(logging.WARNING)
            quiet_log.propagate = False
    settings.set("LOG_INSTALL_ROOT_HANDLER", bool(opts.verbose), priority="cmdline")
    root = logging.getLogger()
    root_handlers = root.handlers[:]
    if not opts.verbose:
        # Failed domains are data in the database, not log lines: while the crawl runs, log
        # records go nowhere, whatever handlers an embedding program installed.
        root.handlers = [logging.NullHandler()]
    try:
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(spider)
        process.crawl(crawler)
        process.start()
    finally:
        root.handlers = root_handlers
        if handler is not None:
            for name in ("detector.input", "detector.signatures"):
                logging.getLogger(name).removeHandler(handler)
    stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    if stats.get("detector/render_note"):
        sys.stderr.write(f"warning: {stats['detector/render_note']}\n")  # once per run
    if stats.get("detector/fatal"):
        raise CrawlError(f"the crawl could not start: {stats['detector/fatal']}")
    if stats.get("detector/failed"):
        raise CrawlError(f"the crawl failed: {stats['detector/failed']}")
    return CrawlReport(run_id, int(stats.get("detector/invalid_lines", 0)), stats)


def network_options() -> tuple[str, ...]:
    """The CrawlOptions fields marked :func:`network`, in declaration order."""
    return tuple(f.name for f in fields(CrawlOptions) if f.metadata.get("network"))


def option_flag(name: str, value: Any) -> str:
    """How a person gives an option again: ``--proxy http://...``, ``--ignore-robots``, ``--no-dns``.

    >>> option_flag("user_agent", "bot/1"), option_flag("ignore_robots", True), option_flag("dns", False)
    ('--user-agent bot/1', '--ignore-robots', '--no-dns')
    >>> option_flag("proxy", "http://127.0.0.1:8080"), option_flag("ignore_robots", False)
    ('--proxy http://127.0.0.1:8080', '--obey-robots')
    """
    flag = "--" + name.replace("_", "-")
    if value is True:
        return flag
    if value is False:
        return _OFF_FLAGS.get(name, "--no-" + name.replace("_", "-"))
    return f"{flag} {value}"


#: The "off" spelling of boolean options whose off flag is not ``--no-NAME``.
_OFF_FLAGS = {"ignore_robots": "--obey-robots"}


def _as_dict(opts: CrawlOptions) -> dict[str, Any]:
    return {name: getattr(opts, name) for name in CrawlOptions.__dataclass_fields__}

