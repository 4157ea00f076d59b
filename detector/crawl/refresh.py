"""``refresh.run``: re-scan the domains whose last successful scan is too old.

Planning and crawling happen under one hold of the database's lock, so two scheduled
refreshes never pick the same domains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from detector.crawl.runner import CrawlOptions, CrawlReport, network_options
from detector.crawl.runner import run as run_crawl_command
from detector.errors import DetectorError
from detector.store.freshness import StalePlan, format_timedelta, stale_domains
from detector.store.scans import last_run_options
from detector.store.store import Store

#: The runs whose recorded network options a refresh reuses: the crawls (and the demo's crawl).
REUSED_FROM = ("crawl", "demo")


class RefreshError(DetectorError):
    """A refresh cannot run (no such database)."""


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What a refresh chose and, when anything was stale, the crawl's report."""

    plan: StalePlan
    #: ``--older-than`` as text for people (``7d``) and as given.
    older_than: str
    older_than_delta: timedelta
    crawl: CrawlReport | None
    #: Network options taken from the last crawl (name -> value), and that run's id.
    reused: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reused_from: str = ""

    @property
    def stale_left(self) -> int:
        """Stale domains ``limit`` left for the next run."""
        return self.plan.stale_total - len(self.plan.domains)


def run(
    options: CrawlOptions,
    *,
    older_than: timedelta,
    only: Sequence[str] | None = None,
    limit: int | None = None,
    on_plan: Callable[[RefreshReport], None] | None = None,
    given: Collection[str] | None = None,
) -> RefreshReport:
    """Choose the stale domains of ``options.db`` (``only`` among these) and crawl them.

    ``options.inputs`` is ignored: the chosen domains are the input, crawled exactly as
    stored.  ``on_plan`` is called with the plan (no crawl yet) just before
    crawling.  Raises :class:`RefreshError` for a missing database and
    :class:`~detector.store.lock.LockedError` when another run holds it.

    The network options (:func:`~detector.crawl.runner.network_options`: proxy, user agent,
    timeouts, pages...) that the last ``crawl`` of the database recorded are used again,
    except those named in ``given`` (None: those that differ from CrawlOptions' defaults);
    the report says which (``reused``).
    """
    db = options.db
    if not Path(db).exists():
        raise RefreshError(
            f"{db}: no such database. Crawl a domain list into it first: detector crawl domains.txt --db {db}"
        )
    age = format_timedelta(older_than)
    with Store.open(db, lock="refresh") as store:
        plan = stale_domains(store.db, older_than, only=only, limit=limit)
        if not plan.domains:
            return RefreshReport(plan, age, older_than, None)
        last = last_run_options(store.db, REUSED_FROM)
        reused = reusable_options(options, last.options, given) if last else {}
        options = dataclasses.replace(options, **reused)
        reused_from = last.id if last and reused else ""
        if on_plan is not None:
            on_plan(RefreshReport(plan, age, older_than, None, reused, reused_from))
        list_file = _write_list(plan.domains, db)
        try:
            crawl_options = dataclasses.replace(
                options, inputs=(str(list_file),), column=None,
                # The stored names are clean already: keep them exactly as they are.
                keep_subdomains=True, allow_ip=True, total=len(plan.domains),
            )
            report = run_crawl_command(crawl_options, command="refresh", planned=len(plan.domains))
        finally:
            list_file.unlink(missing_ok=True)
    left = plan.stale_total - len(plan.domains)
    report.stats["stale_left"] = left
    report.summary.update(stale_left=left, older_than=age, reused_options=dict(reused), reused_from=reused_from)
    return RefreshReport(plan, age, older_than, report, reused, reused_from)


def reusable_options(options: CrawlOptions, recorded: Mapping[str, Any],
                     given: Collection[str] | None = None) -> dict[str, Any]:
    """The recorded network options to use instead of ``options``' own (name -> value).

    An option is kept as it is when named in ``given`` (or, with ``given`` None, when it
    differs from its default); a recorded value equal to the current one is left out.

    >>> reusable_options(CrawlOptions(inputs=()), {"proxy": "http://127.0.0.1:3128", "pages": 0, "db": "x.db"})
    {'pages': 0, 'proxy': 'http://127.0.0.1:3128'}
    >>> reusable_options(CrawlOptions(inputs=(), pages=1), {"pages": 0}, given={"pages"})
    {}
    """
    defaults = CrawlOptions(inputs=())
    chosen: dict[str, Any] = {}
    for name in network_options():
        if name not in recorded:
            continue
        current = getattr(options, name)
        if given is not None and name in given:
            continue
        if given is None and current != getattr(defaults, name):
            continue
        value = recorded[name]
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        if value != current:
            chosen[name] = value
    return chosen


def _write_list(domains: Sequence[str], db: str) -> Path:
    """The chosen domains in ``<db>.refresh-list``, which the spider reads (one per line).

    Beside the database and under its lock, so a killed run leaves at most this one file,
    which the next run overwrites.
    """
    path = Path(db).with_name(Path(db).name + ".refresh-list")
    path.write_text("\n".join(domains) + "\n", encoding="utf-8")
    return path
