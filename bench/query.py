#!/usr/bin/env python3
"""Query times on a database of 1,000,000 detection rows: Datasette's canned queries, the views,
"domains running X" and "technologies of Y".

    python bench/query.py [--domains 100000] [--per-domain 10] [--repeat 21] [--db PATH] [--keep]
                          [--max-ms 10]

Builds a real SQLite file through the Store (every migration, foreign keys on): the signature
library mirrored, domains with a scan each (some failing), detections drawn from the library
with a long tail (a few technologies on most sites, most on a few), and their change events.
Then times each query (median of --repeat runs; every row fetched, or the first 1,001 as
Datasette does) and prints its plan.  Exit 1 when a lookup ("domains running X", a page or
all of a technology's domains but the most popular one's; "technologies of Y") is slower
than --max-ms.  The machine may be shared: say so with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.engine.signatures import load_signatures
from detector.store.datasette import metadata
from detector.store.store import Store

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(store: Store, n_domains: int, per_domain: int, seed: int = 13) -> dict[str, str]:
    """Fill the database; return names worth asking about (popular, mid, rare technology; a domain)."""
    rng = random.Random(seed)
    library = load_signatures(None)
    store.mirror_library(library)
    names = sorted(library.signatures)
    rng.shuffle(names)
    # Zipf-like popularity: the k-th technology is drawn with weight 1/k.
    cum = list(itertools.accumulate(1 / (k + 1) for k in range(len(names))))
    cats = {n: json.dumps(list(library.signatures[n].categories)) for n in names}
    conn = store.db.conn
    # A large page cache for the build (the indexes take random inserts); queries use the default.
    conn.execute("PRAGMA cache_size = -400000")
    with store.transaction():
        domains, scans, detections, changes = [], [], [], []
        for i in range(n_domains):
            domain = f"site{i:07d}.test"
            age = rng.randint(0, 90)
            at = stamp(NOW - timedelta(days=age, minutes=rng.randint(0, 1440)))
            failed = rng.random() < 0.05
            domains.append((domain, at, at, "error" if failed else "ok", None if failed else at))
            scans.append((f"run-{age}", domain, at, at, "error" if failed else "ok",
                          "timeout" if failed else None, "no answer" if failed else None, 1))
            picked: dict[str, None] = {}
            while len(picked) < per_domain:
                picked.update(dict.fromkeys(rng.choices(names, cum_weights=cum, k=per_domain - len(picked))))
            for tech in picked:
                removed = rng.random() < 0.03
                first = stamp(NOW - timedelta(days=age + rng.randint(0, 400)))
                detections.append((domain, tech, rng.choice((None, "1.2", "3.4.1")), 100, cats[tech], first, at,
                                   "[]", "removed" if removed else "active", at if removed else None))
                changes.append((domain, tech, "added", None, None, first))
                if removed:
                    changes.append((domain, tech, "removed", None, None, at))
            if len(detections) >= 100_000 or i == n_domains - 1:
                conn.executemany("INSERT INTO domains (domain, added_at, last_scanned_at, last_status, last_ok_at) "
                                 "VALUES (?, ?, ?, ?, ?)", domains)
                conn.executemany("INSERT INTO scans (run_id, domain, started_at, finished_at, status, error_kind, "
                                 "error_message, pages) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", scans)
                conn.executemany("INSERT INTO detections (domain, technology, version, confidence, categories, "
                                 "first_seen, last_seen, evidence, status, removed_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", detections)
                conn.executemany("INSERT INTO changes (domain, technology, kind, old_version, new_version, at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", changes)
                domains, scans, detections, changes = [], [], [], []
    conn.execute("ANALYZE")
    conn.execute("PRAGMA cache_size = -2000")
    return {"popular": names[0], "mid": names[40], "rare": names[2000], "domain": f"site{n_domains // 2:07d}.test"}


#: What Datasette fetches of a query's answer (max_returned_rows, and one more to know there are more).
DATASETTE_ROWS = 1001


def timed(store: Store, sql: str, params: dict[str, Any], repeat: int, limit: int | None = None) -> tuple[float, int]:
    """Median milliseconds over ``repeat`` runs (fewer past 3 s in all) and the row count: every row,
    or the first ``limit``."""
    times: list[float] = []
    count = 0
    for _ in range(repeat):
        if sum(times) > 3000:  # a slow query: three runs tell enough
            break
        start = time.perf_counter()
        cursor = store.db.conn.execute(sql, params)
        count = len(cursor.fetchall() if limit is None else cursor.fetchmany(limit))
        times.append((time.perf_counter() - start) * 1000)
        cursor.close()
    return statistics.median(times), count


def plan(store: Store, sql: str, params: dict[str, Any]) -> str:
    return "; ".join(r[3] for r in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--per-domain", type=int, default=10, help="detections per domain")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--db", type=Path, help="database file (default: a temporary file; built if new)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--max-ms", type=float, default=10.0, help="the bar for the two lookups")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="detector-bench-query-"))
    path = args.db or tmp / "query.db"
    fresh = not path.exists()
    store = Store.open(path)
    try:
        start = time.perf_counter()
        if fresh:
            picks = build(store, args.domains, args.per_domain)
            print(f"built {path} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        else:
            top = [r[0] for r in store.db.execute(
                "SELECT technology FROM detections GROUP BY technology ORDER BY count(*) DESC")]
            picks = {"popular": top[0], "mid": top[min(40, len(top) - 1)], "rare": top[len(top) // 2],
                     "domain": store.db.execute("SELECT domain FROM domains ORDER BY domain LIMIT 1 OFFSET "
                                                  "(SELECT count(*) / 2 FROM domains)").fetchone()[0]}
        rows = store.db.execute("SELECT count(*) FROM detections").fetchone()[0]
        counts = {k: store.db.execute("SELECT count(*) FROM detections WHERE technology = ?", [v]).fetchone()[0]
                  for k, v in picks.items() if k != "domain"}
        print(f"{rows:,} detection rows, {store.db.execute('SELECT count(*) FROM domains').fetchone()[0]:,} domains; "
              + ", ".join(f"{k} technology {picks[k]!r} on {n:,}" for k, n in counts.items()))
        print(f"median of {args.repeat} runs (of 3 or more for queries past 3 s in all); the machine may be "
              "shared with other work\n")

        # (label, SQL, parameters, held to --max-ms, rows fetched: None for all)
        queries: list[tuple[str, str, dict[str, Any], bool, int | None]] = []
        for which in ("popular", "mid", "rare"):
            queries.append((f"domains running X ({which}, one page of 100)",
                            ("SELECT domain, version, last_seen FROM detections WHERE technology = :t "
                             "AND status = 'active' ORDER BY last_seen DESC LIMIT 100"), {"t": picks[which]}, True, None))
        for which in ("popular", "mid", "rare"):  # every domain: the bar holds short of the most popular
            queries.append((f"domains running X ({which}, all)",
                            ("SELECT domain, version, last_seen FROM detections WHERE technology = :t "
                             "AND status = 'active'"), {"t": picks[which]}, which != "popular", None))
        queries.append(("technologies of Y", ("SELECT technology, version, categories, last_seen FROM detections "
                                              "WHERE domain = :d"), {"d": picks["domain"]}, True, None))
        queries.append(("technologies of Y (domain_technologies view)",
                        "SELECT * FROM domain_technologies WHERE domain = :d", {"d": picks["domain"]}, True, None))
        params = {"technology": picks["mid"], "cohort": "integration"}
        for name, q in metadata(path)["databases"][path.stem]["queries"].items():
            wanted = {n: params[n] for n in set(re.findall(r":(\w+)", q["sql"]))}
            queries.append((f"canned {name} (Datasette's first 1,001 rows)", q["sql"], wanted, False, DATASETTE_ROWS))
            queries.append((f"canned {name} (all)", q["sql"], wanted, False, None))
        for view in ("technology_counts", "category_counts"):
            queries.append((f"view {view} (all)", f"SELECT * FROM {view}", {}, False, None))
        for view in ("technology_counts", "domain_summary"):
            queries.append((f"view {view} (Datasette's page of 101)", f"SELECT * FROM {view} LIMIT 101", {}, False,
                            None))

        slow = []
        width = max(len(q[0]) for q in queries)
        for label, sql, qparams, bar, limit in queries:
            ms, n = timed(store, sql, qparams, args.repeat, limit)
            mark = "  <- over the bar" if bar and ms > args.max_ms else ""
            if mark:
                slow.append(label)
            print(f"{label.ljust(width)}  {ms:9.2f} ms  {n:>7,} rows{mark}")
            print(f"{'':{width}}    plan: {plan(store, sql, qparams)}")
        if slow:
            print(f"\nover {args.max_ms} ms: {', '.join(slow)}")
        return 1 if slow else 0
    finally:
        store.close()
        if not args.keep and not args.db:
            shutil.rmtree(tmp, ignore_errors=True)
        elif fresh:
            print(f"kept {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
