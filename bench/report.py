#!/usr/bin/env python3
"""``detector report`` at scale: the time of each section's queries, of rendering, and the page's size.

    python bench/report.py [--domains 100000] [--techs 12] [--rows 5000] [--db PATH]

Without --db, builds a database with bench/refresh.py (DOMAINS domains with TECHS detections
each, a refresh of a fifth of them: history included) in a temporary folder, then times each
section of :func:`detector.store.report.read_report` and the rendering, and prints the size
of the HTML file.  With --db, reports on that database as it is.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.report import ReportOptions, build_report
from detector.store import report as sections
from detector.store.store import open_database


def timed(name: str, func: object, *args: object, **kwargs: object) -> object:
    """Call, print how long it took, return the result."""
    started = time.perf_counter()
    result = func(*args, **kwargs)  # type: ignore[operator]
    print(f"  {name:<22} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> None:
    """Build (or take) a database, time the report's parts, print figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--techs", type=int, default=12)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--db", type=Path)
    args = ap.parse_args()
    folder = None
    path = args.db
    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
        path = folder / "bench.db"
        subprocess.run([sys.executable, str(ROOT / "bench" / "refresh.py"), "--domains", str(args.domains),
                        "--techs", str(args.techs), "--rescans", str(args.domains // 5), "--db", str(path),
                        "--keep"], check=True, stdout=subprocess.DEVNULL)
    db = open_database(path)
    domains = db.execute("select count(*) from domains").fetchone()[0]
    detections = db.execute("select count(*) from detections").fetchone()[0]
    changes = db.execute("select count(*) from changes").fetchone()[0]
    print(f"database {path}: {domains:,} domains, {detections:,} detections, {changes:,} change events")
    stale = timedelta(days=30)
    timed("technology_adoption", sections.technology_adoption, db, 15)
    timed("category_adoption", sections.category_adoption, db, 15)
    timed("segmentations", sections.segmentations, db)
    timed("weekly_changes", sections.weekly_changes, db, 12)
    timed("scan_health", sections.scan_health, db, stale_after=stale)
    timed(f"domain_rows ({args.rows:,})", sections.domain_rows, db, args.rows, stale_after=stale)
    db.close()
    started = time.perf_counter()
    page, _, listed = build_report(path, ReportOptions(rows=args.rows))
    print(f"whole report (read + render): {time.perf_counter() - started:.2f} s; {len(page.encode()) / 1e6:,.2f} MB "
          f"of HTML listing {listed:,} domains")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")
    if folder is not None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
