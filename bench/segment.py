#!/usr/bin/env python3
"""Segment 100,000 accounts with 2,000,000 detections in a real SQLite file; print time and peak RSS.

    python bench/segment.py [--accounts 100000] [--detections 2000000] [--db PATH] [--keep]

Builds `domains`, `detections` and `accounts` tables shaped like the crawl's (random but
seeded: mostly fresh scans, some stale, some never scanned), then runs what
`detector segment --rules examples/rules.yaml --export FILE.csv` runs, twice (history kept),
and `segment diff`, and times them. The bar: each run under 20 s.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlite_utils

from detector.engine.signatures import load_signatures
from detector.segment.runner import diff, run
from detector.store.cohorts import format_table
from detector.store.store import open_database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
INDUSTRIES = ["Retail", "Apparel", "Beauty", "Garden", "Software", "Food", "Travel"]
COUNTRIES = ["US", "GB", "CA", "AU", "DE", "FR", "NL", "ES"]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(db: sqlite_utils.Database, n_accounts: int, n_detections: int, seed: int = 5) -> None:
    """Fill the database with seeded random accounts, scans and detections."""
    rng = random.Random(seed)
    library = load_signatures(None)
    names = sorted(library.signatures)
    # A few hundred common technologies (weighted) plus the long tail, like real crawls.
    common = [
        "Shopify",
        "WooCommerce",
        "Klaviyo",
        "MailChimp",
        "Google Analytics",
        "Google Tag Manager",
        "Optimizely",
        "Segment",
        "Judge.me",
        "LoyaltyLion",
        "BigCommerce",
        "Omnisend",
        "HubSpot",
    ]
    pool = common * 10 + rng.sample(names, 600)
    cats = {n: json.dumps(list(library.signatures[n].categories)) for n in set(pool)}
    conn = db.conn
    for column, kind in (
        ("name", "text"),
        ("industry", "text"),
        ("employees", "integer"),
        ("country", "text"),
    ):
        db.execute(f"alter table accounts add column {column} {kind}")
    conn.execute("begin")
    domains, detections, accounts = [], [], []
    scanned: list[tuple[str, int, str]] = []
    for i in range(n_accounts):
        domain = f"shop{i:06d}.test"
        employees = int(rng.lognormvariate(4, 1.3)) + 1
        accounts.append(
            (
                domain,
                stamp(NOW),
                f"Shop {i}",
                rng.choice(INDUSTRIES),
                employees,
                rng.choice(COUNTRIES),
            )
        )
        roll = rng.random()
        if roll < 0.04:
            domains.append((domain, stamp(NOW), stamp(NOW), "error", None))
            continue
        age = rng.randint(0, 60) if roll < 0.9 else rng.randint(91, 300)
        ok = stamp(NOW - timedelta(days=age, hours=rng.randint(0, 23)))
        domains.append((domain, ok, ok, "ok", ok))
        scanned.append((domain, age, ok))
    # Parents first: detections name their domain and technology (foreign keys, migration 10).
    conn.executemany("insert into domains values (?,?,?,?,?)", domains)
    conn.executemany("insert or ignore into technologies (name, categories) values (?, ?)", cats.items())
    base, extra = divmod(n_detections, len(scanned))
    for j, (domain, age, ok) in enumerate(scanned):
        want = base + (1 if j < extra else 0)
        techs: dict[str, None] = {}
        while len(techs) < want:
            techs[rng.choice(pool)] = None
        for tech in techs:
            seen = (
                ok
                if rng.random() < 0.95
                else stamp(NOW - timedelta(days=age + rng.randint(1, 200)))
            )
            detections.append(
                (domain, tech, None, 100, cats[tech], seen, seen, "[]", "active", None, 0)
            )
        if len(detections) > 200_000:
            conn.executemany("insert into detections values (?,?,?,?,?,?,?,?,?,?,?)", detections)
            detections.clear()
    conn.executemany("insert into detections values (?,?,?,?,?,?,?,?,?,?,?)", detections)
    conn.executemany(
        "insert into accounts (domain, imported_at, name, industry, employees, country) "
        "values (?,?,?,?,?,?)",
        accounts,
    )
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--detections", type=int, default=2_000_000)
    parser.add_argument("--rules", type=Path, default=ROOT / "examples" / "rules.yaml")
    parser.add_argument("--db", type=Path, help="database file (default: a temporary file)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="detector-bench-"))
    path = args.db or tmp / "bench.db"
    if path.exists():
        path.unlink()
    db = open_database(path)
    started = time.perf_counter()
    build(db, args.accounts, args.detections)
    n_det = db.execute("select count(*) from detections").fetchone()[0]
    n_acc = db.execute("select count(*) from accounts").fetchone()[0]
    print(
        f"built {n_acc:,} accounts, {n_det:,} detections in {time.perf_counter() - started:.1f} s "
        f"({path.stat().st_size / 1e6:.0f} MB)"
    )
    db.close()

    # What `detector segment --rules RULES --export FILE.csv` runs, twice: the second run
    # finds the first one kept (segment_runs, segment_accounts) and is compared with it.
    totals = []
    for attempt in (1, 2):
        started = time.perf_counter()
        report = run(path, args.rules, as_of=NOW + timedelta(days=attempt - 1), export_path=tmp / "cohorts.csv")
        done = time.perf_counter()
        totals.append(done - started)
        if attempt == 1:
            print(format_table(report.table))
            print(format_table([["funnel", "accounts"], *([s, str(n)] for s, n in report.funnel)]))
        print(
            f"run {report.run_id}: segmented {n_acc:,} accounts / {n_det:,} detections into "
            f"{report.memberships:,} memberships and exported {report.exported:,} accounts "
            f"in {done - started:.1f} s (signature library and rules loaded included)"
        )
    started = time.perf_counter()
    moves = diff(path)
    print(f"diff of runs {moves.old.id} and {moves.new.id}: {len(moves.moves):,} changes in {time.perf_counter() - started:.1f} s")
    db = open_database(path)
    kept = db.execute("select count(*) from segment_accounts").fetchone()[0]
    print(f"history kept: {db.execute('select count(*) from segment_runs').fetchone()[0]} runs, {kept:,} segment_accounts rows ({path.stat().st_size / 1e6:.0f} MB)")
    worst = max(totals)
    print(f"slowest run {worst:.1f} s (limit 20 s): {'OK' if worst < 20 else 'TOO SLOW'}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {peak / 1024:.0f} MB")
    db.close()
    if args.keep or args.db is not None:
        print(f"kept {path} and {tmp / 'cohorts.csv'}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
