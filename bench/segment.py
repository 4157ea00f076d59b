#!/usr/bin/env python3
"""Segment 100,000 accounts with 2,000,000 detections in a real SQLite file; print time and peak RSS.

    python bench/segment.py [--accounts 100000] [--detections 2000000] [--db PATH] [--keep]

Builds `domains`, `detections` and `accounts` tables shaped like the crawl's (random but
seeded: mostly fresh scans, some stale, some never scanned), then runs what
`detector segment --rules examples/rules.yaml --export FILE.csv` runs and times it.
The issue's bar: segmentation under a minute.
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
from detector.segment.assign import Segmenter
from detector.segment.rules import Vocabulary, load_rules, needed_technologies
from detector.store.cohorts import (
    account_source,
    format_table,
    iter_accounts,
    size_table,
    write_export,
    write_segmentation,
)
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
    conn.executemany("insert into domains values (?,?,?,?,?)", domains)
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

    started = time.perf_counter()
    db = open_database(path)
    vocabulary = Vocabulary.from_library(load_signatures(None))
    rules = load_rules(args.rules, vocabulary)
    loaded = time.perf_counter()
    segmenter = Segmenter(rules, NOW)
    source = account_source(db)
    assignments = (
        segmenter.assign(a)
        for a in iter_accounts(db, source, needed_technologies(rules, vocabulary))
        if segmenter.in_market(a)
    )
    counts = write_segmentation(db, rules, assignments, stamp(NOW))
    segmented = time.perf_counter()
    exported = write_export(db, tmp / "cohorts.csv")
    done = time.perf_counter()
    members = db.execute("select count(*) from cohort_members").fetchone()[0]
    print(format_table(size_table(rules, counts)))
    print(f"rules loaded (signature library included) in {loaded - started:.1f} s")
    print(
        f"segmented {n_acc:,} accounts / {n_det:,} detections into {members:,} memberships "
        f"in {segmented - loaded:.1f} s"
    )
    print(f"exported {exported:,} accounts to CSV in {done - segmented:.1f} s")
    total = done - started
    print(f"total {total:.1f} s (limit 60 s): {'OK' if total < 60 else 'TOO SLOW'}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {peak / 1024:.0f} MB")
    db.close()
    if args.keep or args.db is not None:
        print(f"kept {path} and {tmp / 'cohorts.csv'}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
