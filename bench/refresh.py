#!/usr/bin/env python3
"""Refresh bookkeeping at scale in a real SQLite file: recording re-scans with history, choosing
stale domains, the status report.  Prints each time and the peak RSS.

    python bench/refresh.py [--domains 100000] [--techs 12] [--rescans 20000] [--db PATH] [--keep]

Builds a database of DOMAINS domains with TECHS detections each (recorded through
record_scans, so the history exists), then re-scans RESCANS of them with one technology
dropped and one version bumped each (what `detector refresh` writes), then times
`stale_domains` (what refresh asks before crawling) and `status_report`.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.engine.verdict import SiteDetection
from detector.store.freshness import stale_domains, status_report
from detector.store.scans import ScanResult, record_scans
from detector.store.store import open_database

TECHS = [f"Tech{n:03d}" for n in range(300)]


def scan(domain: str, run: str, at: str, techs: list[tuple[str, str | None]]) -> ScanResult:
    """A successful scan of one domain seeing these technologies."""
    return ScanResult(domain=domain, run_id=run, started_at=at, finished_at=at, status="ok", pages=1,
                      detections=tuple(SiteDetection(t, v, 100, ("CMS",), ()) for t, v in techs))


def main() -> None:
    """Build, re-scan, query; print figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--techs", type=int, default=12)
    ap.add_argument("--rescans", type=int, default=20_000)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rnd = random.Random(7)
    folder = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    path = args.db or folder / "bench.db"
    db = open_database(path)
    stacks = {f"d{n:07d}.test": [(t, f"{rnd.randint(1, 9)}.0") for t in rnd.sample(TECHS, args.techs)]
              for n in range(args.domains)}
    started = time.perf_counter()
    batch: list[ScanResult] = []
    for domain, techs in stacks.items():
        batch.append(scan(domain, "first", "2026-01-01T00:00:00Z", techs))
        if len(batch) == 200:  # the pipeline's batch size
            record_scans(db, batch)
            batch = []
    record_scans(db, batch)
    first = time.perf_counter() - started
    rows = args.domains * args.techs
    print(f"first crawl: {args.domains:,} domains, {rows:,} detections recorded in {first:.1f} s "
          f"({args.domains / first:,.0f} scans/s)")

    chosen = rnd.sample(sorted(stacks), min(args.rescans, args.domains))
    started = time.perf_counter()
    batch = []
    for domain in chosen:
        techs = stacks[domain][1:]  # one dropped
        name, version = techs[0]
        techs[0] = (name, version + ".1")  # one upgraded
        batch.append(scan(domain, "refresh", "2026-02-01T00:00:00Z", techs))
        if len(batch) == 200:
            record_scans(db, batch)
            batch = []
    record_scans(db, batch)
    again = time.perf_counter() - started
    changes = db.execute("select count(*) from changes where run_id = 'refresh'").fetchone()[0]
    print(f"refresh: {len(chosen):,} re-scans with history in {again:.1f} s ({len(chosen) / again:,.0f} scans/s), "
          f"{changes:,} change events")

    started = time.perf_counter()
    plan = stale_domains(db, timedelta(days=7), limit=5000)
    print(f"stale_domains (--older-than 7d --limit 5000): {plan.stale_total:,} stale, "
          f"{len(plan.domains):,} chosen in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    report = status_report(db, stale_after=timedelta(days=30))
    print(f"status_report: {report['database_domains']:,} domains, {report['detections']['active']:,} active "
          f"detections, {report['detections']['stale']:,} stale, in {time.perf_counter() - started:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; database {path.stat().st_size / 1e6:,.0f} MB")
    db.close()
    if not args.keep and args.db is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
