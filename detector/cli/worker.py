"""``detector worker`` and ``detector ingest``, and the ``--redis`` side of crawl, refresh and status.

One Redis holds the runs; any number of ``detector worker`` processes, on any machines, crawl
from it; one ``detector ingest`` (or the enqueuing command with ``--wait``) stores the results.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from detector.cli.options import (
    FETCH_OPTIONS,
    check_database,
    check_signatures,
    crawl_settings,
    db_option,
    fetch_options,
    print_summary,
    reported,
    signatures_option,
)
from detector.store.history import DEFAULT_MISS_THRESHOLD

if TYPE_CHECKING:
    from detector.crawl.distributed import RunQueue
    from detector.crawl.ingest import IngestReport
    from detector.store.store import Store

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"]}


def redis_option(help: str) -> Callable[[F], F]:
    """``--redis URL`` and ``--redis-prefix NAME``."""
    def apply(func: F) -> F:
        func = click.option("--redis-prefix", default="detector", show_default=True, metavar="NAME",
                            help="Prefix of every Redis key (one per database sharing a Redis).")(func)
        return click.option("--redis", "redis_url", metavar="URL", help=help)(func)
    return apply


def enqueue_options(func: F) -> F:
    """``--redis``, ``--redis-prefix`` and ``--wait`` for crawl and refresh."""
    func = click.option("--wait", is_flag=True,
                        help="With --redis: stay and store the results into --db as they arrive (the writer).")(func)
    return redis_option("Queue the domains in this Redis for `detector worker`s instead of crawling here, "
                        "e.g. redis://127.0.0.1:6379/0.")(func)


def connect(url: str, prefix: str, **kwargs: Any) -> RunQueue:
    """The runs in Redis at ``url``, or a click error saying why it cannot be reached."""
    from detector.crawl.distributed import RunQueue

    with reported():
        return RunQueue.connect(url, prefix=prefix, **kwargs)


def reject_fetch_options(ctx: click.Context) -> None:
    """With --redis the workers fetch: their options given here would be silently ignored."""
    # Only what was typed: an environment default (DETECTOR_RENDER) applies to the workers too.
    given = [name for name in FETCH_OPTIONS
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        flags = ", ".join("--" + ("no-detect" if n == "no_detect" else n.replace("_", "-")) for n in given)
        raise click.UsageError(f"{flags}: with --redis the workers fetch and detect; give these to "
                               "`detector worker` (nothing was queued).")


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM set a flag instead of killing: the writer ends its batch and stops."""
    stopped = [False]

    def handler(signum: int, frame: object) -> None:
        stopped[0] = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: stopped[0]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def show_progress(enabled: bool) -> Callable[[IngestReport, list[dict[str, Any]]], None] | None:
    """A progress line on stderr: results stored, what is queued and leased, rows/s."""
    if not enabled:
        return None
    last = [0.0]

    def show(report: IngestReport, runs: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5:
            return
        last[0] = now
        queued = sum(r["queued"] for r in runs)
        leased = sum(r["leased"] for r in runs)
        enqueued = sum(r["enqueued"] for r in runs)
        written = sum(r["written"] for r in runs)
        sys.stderr.write(f"\r{written:,}/{enqueued:,} stored  {queued:,} queued  {leased:,} leased  "
                         f"{report.rows_per_second:.1f} rows/s\x1b[K")
        sys.stderr.flush()

    return show


def run_writer(queue: RunQueue, store: Store, *, runs: Sequence[str] | None, follow: bool,
               signatures: Sequence[str], progress: bool) -> IngestReport:
    """Ingest until the runs finish (or a signal stops it), with the progress line."""
    from detector.crawl.ingest import ingest

    with stop_on_signals() as stop, reported():
        report = ingest(queue, store, runs=runs, follow=follow, signatures=signatures, stop=stop,
                        progress=show_progress(progress))
    if progress:
        sys.stderr.write("\n")
    return report


# ---------------------------------------------------------------------------- crawl/refresh --redis


def enqueue_run(ctx: click.Context, command: str, domains: Iterator[str], options: dict[str, Any],
                *, planned: int | None = None, store: Store | None = None,
                on_queued: Callable[[str, int], None] | None = None) -> None:
    """Queue ``domains`` as a new run; with ``--wait`` store its results into ``--db`` (the lock held)."""
    from detector.crawl.distributed import redact
    from detector.crawl.ingest import enqueue
    from detector.crawl.pipelines import new_run_id
    from detector.store.store import Store

    reject_fetch_options(ctx)
    url, prefix, wait, db = options["redis_url"], options["redis_prefix"], options["wait"], options["db"]
    check_signatures(options["signature_dirs"], False)
    queue = connect(url, prefix)
    started = time.monotonic()
    run_id = new_run_id()
    recorded = {"miss_threshold": options["miss_threshold"], "planned": planned, "db": db}
    try:
        if wait and store is None:
            with reported():
                store = Store.open(db, lock=command)  # locked out: fail before queueing anything
        if wait and store is not None:
            store.close_dead_runs()
        try:
            with reported():
                queued = enqueue(queue, run_id, command, domains, recorded)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                queued = queue.counts(run_id)["enqueued"]
                click.echo(f"Interrupted while queueing: run {run_id} was sealed with the {queued:,} domain(s) "
                           "queued so far, and workers crawl them as usual. Run the command again to queue the "
                           "whole list as a new run.", err=True)
            raise SystemExit(130) from None
        if on_queued is not None:
            on_queued(run_id, queued)
        if not wait:
            _print_queued(run_id, queued, redact(url), prefix, db, options["as_json"])
            return
        assert store is not None
        progress = sys.stderr.isatty() if options["progress"] is None else options["progress"]
        report = run_writer(queue, store, runs=[run_id], follow=False, signatures=options["signature_dirs"],
                            progress=progress)
    finally:
        queue.close()
        if store is not None and wait:
            store.close()
    summary = report.summaries.get(run_id)
    if summary is None:
        click.echo(f"Stopped before run {run_id} finished; its results so far are in {db}. Resume with: "
                   f"detector ingest --redis {redact(url)} --db {db}", err=True)
        return
    summary.update(command=command, invalid_lines=options.get("invalid_lines", 0),
                   elapsed_seconds=round(time.monotonic() - started, 2), database=db)
    print_summary(summary, options["as_json"])


def _print_queued(run_id: str, queued: int, url: str, prefix: str, db: str, as_json: bool) -> None:
    flag = f" --redis-prefix {prefix}" if prefix != "detector" else ""
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "queued": queued, "redis": url, "prefix": prefix}, indent=2))
        return
    click.echo(f"Queued {queued:,} domain(s) as run {run_id} in {url}.\n"
               f"Crawl them:  detector worker --redis {url}{flag}   (any number, on any machine)\n"
               f"Store them:  detector ingest --redis {url}{flag} --db {db}\n"
               f"Follow them: detector status --redis {url}{flag}")


def crawl_redis(ctx: click.Context, inputs: tuple[str, ...], options: dict[str, Any]) -> None:
    """``detector crawl --redis``: the domains of the files become a queued run."""
    from detector.inputs import DomainEntry, read_domains

    options["invalid_lines"] = 0

    def domains() -> Iterator[str]:
        for entry in read_domains(inputs, column=options["column"], keep_subdomains=options["keep_subdomains"],
                                  allow_ip=options["allow_ip"]):
            if isinstance(entry, DomainEntry):
                yield entry.domain
            else:
                options["invalid_lines"] += 1
                click.echo(f"warning: {entry.describe()}; skipped", err=True)

    if options["wait"]:
        check_database(options["db"])
    enqueue_run(ctx, "crawl", domains(), options)


def refresh_redis(ctx: click.Context, options: dict[str, Any], *, older_than: Any, only: list[str] | None,
                  limit: int | None, announce: Callable[[int, int], None]) -> bool:
    """``detector refresh --redis``: the stale domains become a queued run; False when none is stale."""
    from pathlib import Path

    from detector.store.freshness import stale_domains
    from detector.store.store import Store

    db = options["db"]
    if not Path(db).exists():
        raise click.ClickException(f"{db}: no such database. Crawl a domain list into it first: "
                                   f"detector crawl domains.txt --db {db}")
    reject_fetch_options(ctx)
    with reported():
        store = Store.open(db, lock="refresh")
    try:
        plan = stale_domains(store.db, older_than, only=only, limit=limit)
        if not plan.domains:
            return False
        announce(len(plan.domains), plan.stale_total - len(plan.domains))
        enqueue_run(ctx, "refresh", iter(plan.domains), options, planned=len(plan.domains),
                    store=store if options["wait"] else None)
    finally:
        store.close()
    return True


# ---------------------------------------------------------------------------- worker


@click.command(context_settings=CONTEXT)
@click.option("--redis", "redis_url", required=True, metavar="URL",
              help="The Redis holding the runs, e.g. redis://queue.internal:6379/0 (rediss:// for TLS).")
@click.option("--redis-prefix", default="detector", show_default=True, metavar="NAME", help="Prefix of the Redis keys.")
@click.option("--lease", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds a domain stays leased without renewal (heartbeat every third of it); "
                   "a dead worker's domains go back to the queue after this.")
@click.option("--drain", is_flag=True, help="Exit once no run has queued or leased domains (for batch jobs).")
@click.option("--id", "worker_id", default="", help="This worker's name in status (default: host:pid).")
@fetch_options
@click.pass_context
def worker(ctx: click.Context, /, redis_url: str, redis_prefix: str, lease: float, drain: bool, worker_id: str,
           **options: Any) -> None:
    """Crawl domains queued in Redis by `crawl --redis` / `refresh --redis`; send results back.

    Run as many as you like, on any machines: each leases a few domains at a time, renews its
    leases while it works, and hands every result to Redis for the one writer
    (`detector ingest`). A worker killed in any way loses nothing: its leases expire and
    other workers take the domains.

    \b
    Example:
      detector worker --redis redis://queue.internal:6379/0 --concurrency 64 --workers 2

    Exit status: 0 when stopped (Ctrl-C, SIGTERM: unfinished domains go back to the queue)
    or, with --drain, when nothing is left; 1 when Redis cannot be reached or the engine
    cannot start; 2 for usage errors.
    """
    from detector.crawl.queued import run_worker

    # The writer's options have no meaning here: the library's defaults stand in for them.
    writer_side = {"db": "", "column": None, "keep_subdomains": False, "allow_ip": False,
                   "miss_threshold": DEFAULT_MISS_THRESHOLD}
    settings = crawl_settings(ctx, (), 0, {**writer_side, **options})
    connect(redis_url, redis_prefix).close()
    with reported():
        report = run_worker(settings, redis_url, prefix=redis_prefix, lease=lease, drain=drain, worker_id=worker_id)
    stats = report.stats
    click.echo(f"Worker done: {int(stats.get('detector/sites_done', 0)):,} domain(s) crawled, "
               f"{int(stats.get('detector/pages_fetched', 0)):,} pages; "
               f"{int(stats.get('detector/released', 0) or 0):,} unfinished given back to the queue.", err=True)


# ---------------------------------------------------------------------------- ingest


@click.command(context_settings=CONTEXT)
@click.option("--redis", "redis_url", required=True, metavar="URL", help="The Redis holding the runs.")
@click.option("--redis-prefix", default="detector", show_default=True, metavar="NAME", help="Prefix of the Redis keys.")
@db_option("SQLite database to write (created and migrated).")
@click.option("--run", "runs", multiple=True, metavar="ID", help="Only this run (repeatable). Default: every open run.")
@click.option("--follow", is_flag=True, help="Keep waiting for new runs instead of exiting when none is open.")
@signatures_option
@click.option("--json", "as_json", is_flag=True, help="Print the end report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Live progress on stderr (default: on a terminal).")
def ingest(redis_url: str, redis_prefix: str, db: str, runs: tuple[str, ...], follow: bool,
           signature_dirs: tuple[str, ...], as_json: bool, progress: bool | None) -> None:
    """Store the results the workers put in Redis into the database: the one writer.

    Holds the database's lock while it runs, with the same history rules as a local crawl.
    Stopped or killed at any moment, it resumes where it stopped when started again: a
    result leaves Redis only once its scan is committed, and a scan is never stored twice.

    \b
    Example:
      detector ingest --redis redis://queue.internal:6379/0 --db /srv/detector.db

    Exit status: 0 when every run it took finished (or it was stopped; run it again to
    resume), 1 when Redis or the database cannot be used, 2 for usage errors, 75 when
    another run holds the database's lock.
    """
    from detector.store.store import Store

    check_database(db)
    queue = connect(redis_url, redis_prefix)
    try:
        with reported():
            store = Store.open(db, lock="ingest")
        try:
            store.close_dead_runs()
            show = sys.stderr.isatty() if progress is None else progress
            report = run_writer(queue, store, runs=list(runs) or None, follow=follow, signatures=signature_dirs,
                                progress=show)
        finally:
            store.close()
    finally:
        queue.close()
    out = {"database": db, "runs_finished": report.finished, "written": report.written,
           "skipped_already_stored": report.skipped, "seconds": round(report.seconds, 2),
           "rows_per_second": round(report.rows_per_second, 1), "stopped": report.stopped}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not report.finished and not report.written and not report.stopped:
        click.echo(f"Nothing to ingest: no open run in Redis (prefix {redis_prefix}).")
        return
    click.echo(f"Stored {report.written:,} scan(s) into {db} in {report.seconds:.1f} s "
               f"({report.rows_per_second:.1f} rows/s); runs finished: {', '.join(report.finished) or 'none'}"
               + (f"; {report.skipped:,} already stored were skipped" if report.skipped else "") + ".")
    if report.stopped:
        click.echo(f"Stopped; start `detector ingest --redis ... --db {db}` again to resume.", err=True)


# ---------------------------------------------------------------------------- status


def redis_status(url: str, prefix: str, as_json: bool) -> None:
    """``detector status --redis``: queue length, leased, done and failed, workers seen lately."""
    queue = connect(url, prefix)
    try:
        with reported():
            report = queue.status()
    finally:
        queue.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(format_redis_status(report))


def format_redis_status(r: dict[str, Any]) -> str:
    """The Redis status as text for people."""
    lines = [f"Redis: {r['redis']} (prefix {r['prefix']}): {len(r['runs'])} open run(s)"]
    for run in r["runs"]:
        state = "still enqueuing, " if run["state"] == "enqueuing" else ""
        if run.get("cut_short"):
            state = f"sealed early: {run['cut_short']}, "
        lines.append(
            f"  {run['run_id']} ({run['command']}, {state}{run['enqueued']:,} domains): queued {run['queued']:,}, "
            f"leased {run['leased']:,}, done {run['done']:,} (ok {run['ok']:,}, failed {run['failed']:,}"
            + (f", abandoned {run['abandoned']:,}" if run["abandoned"] else "")
            + f"), stored {run['written']:,}")
    lines.append(f"Total: queued {r['queued']:,}, leased {r['leased']:,}, done {r['done']:,}, "
                 f"failed {r['failed']:,}, stored {r['written']:,}")
    lines.append(f"Workers seen in the last minute: {len(r['workers'])}")
    for w in r["workers"]:
        lines.append(f"  {w['worker']}  {w['seen_seconds_ago']:.0f} s ago, {w['domains']:,} domains in all")
    return "\n".join(lines)
