#!/usr/bin/env python3
"""Distributed crawl benchmark: sites/s with 1, 2 and 4 worker processes sharing one Redis
queue, the one writer's sustained rows/s, and Redis memory per million queued domains.

    python3 bench/scale.py                    # 600 sites per run, workers 1 2 4
    python3 bench/scale.py --sites 300 --workers 1 2 --writer-rows 5000

Everything stays on 127.0.0.1: a real redis-server (Debian's package) in a temporary folder,
and bench/crawl.py's multi-host server inventing a small site (homepage + 2 pages) for any
``<prefix><n>.test`` host.  Each worker process is ``detector worker`` (one reactor, detection
inline, http only, robots.txt off); the workers start first and wait, then a run is queued
and timed from queueing to the last result in Redis.  The writer is timed apart, on the
results of those runs plus a synthetic backlog built from them (same sizes, new domains).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def worker_child(url: str, prefix: str, proxy: str, concurrency: int) -> None:
    """One worker process (run as ``--worker``): http only, as bench/crawl.py crawls."""
    from detector.crawl.queued import run_worker
    from detector.crawl.runner import CrawlOptions

    run_worker(CrawlOptions(inputs=(), proxy=proxy, workers=0, concurrency=concurrency, per_site=2, pages=2,
                            ignore_robots=True, timeout=30, retries=0,
                            extra={"DETECTOR_SCHEMES": ["http"], "LOGSTATS_INTERVAL": 0}),
               url, prefix=prefix, lease=60)


def crawl_round(queue: object, url: str, proxy: str, n_workers: int, sites: int, concurrency: int) -> dict[str, float]:
    """Start ``n_workers``, queue ``sites`` domains, time until every result is in Redis."""
    from detector.crawl.distributed import RunQueue
    from detector.crawl.ingest import enqueue

    assert isinstance(queue, RunQueue)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, queue.prefix, proxy, str(concurrency)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(n_workers)]
    try:
        deadline = time.monotonic() + 120
        while len(queue.status()["workers"]) < n_workers:  # every worker's reactor runs and beats
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("workers did not start: " + "".join(p.stderr.read() for p in procs if p.stderr and p.poll() is not None))
            time.sleep(0.2)
        run_id = f"w{n_workers}-{int(time.time())}"
        started = time.monotonic()
        enqueue(queue, run_id, "crawl", (f"s{n_workers}x{i}.test" for i in range(sites)), {})
        while queue.counts(run_id)["done"] < sites:
            time.sleep(0.05)
        seconds = time.monotonic() - started
        c = queue.counts(run_id)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    return {"workers": n_workers, "sites": sites, "failed": c["failed"], "seconds": round(seconds, 2),
            "sites_per_second": round(sites / seconds, 1), "pages_per_second": round(sites * 3 / seconds, 1),
            "run_id": run_id}  # type: ignore[dict-item]


def synthetic_backlog(queue: object, template_runs: list[str], rows: int) -> str:
    """A run of ``rows`` results copied from real ones (new domain names), ready for the writer."""
    import dataclasses

    from detector.crawl.distributed import RunQueue, decode_scan, encode_scan

    assert isinstance(queue, RunQueue)
    samples = []
    for run_id in template_runs:
        for _id, fields in queue.client.xrange(queue.run_keys(run_id)["results"], count=200):
            if fields[b"kind"] == b"scan":
                samples.append(decode_scan(fields[b"data"]))
    run_id = f"synthetic-{int(time.time())}"
    queue.create_run(run_id, "crawl", {})
    keys = queue.run_keys(run_id)
    pipe = queue.client.pipeline(transaction=False)
    for i in range(rows):
        scan = dataclasses.replace(samples[i % len(samples)], domain=f"synthetic{i}.test", run_id=run_id)
        pipe.xadd(keys["results"], {"domain": scan.domain, "kind": "scan", "data": encode_scan(scan)})
        pipe.sadd(keys["done"], scan.domain)
        if i % 1000 == 999:
            pipe.execute()
    pipe.hset(keys["run"], mapping={"enqueued": rows, "state": "open"})
    pipe.execute()
    return run_id


def redis_memory(queue: object, domains: int) -> dict[str, float]:
    """Bytes Redis needs per queued domain (list) and per finished domain (done set)."""
    from detector.crawl.distributed import RunQueue

    assert isinstance(queue, RunQueue)
    client = queue.client
    before = int(client.info("memory")["used_memory"])
    run_id = "memory"
    queue.create_run(run_id, "crawl", {})
    queue.push(run_id, (f"company-{i:07d}.example.com" for i in range(domains)), batch=10_000)
    queued = int(client.info("memory")["used_memory"])
    keys = queue.run_keys(run_id)
    pipe = client.pipeline(transaction=False)
    for i in range(0, domains, 10_000):
        pipe.sadd(keys["done"], *(f"company-{j:07d}.example.com" for j in range(i, min(domains, i + 10_000))))
        pipe.execute()
    done = int(client.info("memory")["used_memory"])
    queue.close_run(run_id)
    return {"domains": domains, "queue_mb_per_million": round((queued - before) / domains, 1),
            "done_mb_per_million": round((done - queued) / domains, 1)}


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=600, help="sites per run (default 600)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker processes per round")
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight per worker")
    ap.add_argument("--writer-rows", type=int, default=20_000, help="synthetic results for the writer")
    ap.add_argument("--memory-domains", type=int, default=1_000_000, help="domains queued to measure memory")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_child(args.worker[0], args.worker[1], args.worker[2], int(args.worker[3]))
        return

    from crawl import start_server  # bench/crawl.py's multi-host server

    from detector.crawl.distributed import RunQueue
    from detector.crawl.ingest import ingest
    from detector.store.store import Store
    from tests.servers import RedisServer

    server, proxy = start_server()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        redis = RedisServer(tmp / "redis").start()
        queue = RunQueue.connect(redis.url, prefix="bench")
        try:
            print(f"{os.cpu_count()} CPUs, shared with other work while this ran: figures are a floor.", flush=True)
            runs = []
            for n in args.workers:
                r = crawl_round(queue, redis.url, proxy, n, args.sites, args.concurrency)
                runs.append(str(r["run_id"]))
                print(f"{n} worker process(es): {r['sites']:,} sites ({r['failed']} failed) in {r['seconds']:.1f} s "
                      f"= {r['sites_per_second']:.1f} sites/s, {r['pages_per_second']:.1f} pages/s", flush=True)
            synthetic = synthetic_backlog(queue, runs, args.writer_rows)
            with Store.open(tmp / "bench.db", lock="ingest") as store:
                report = ingest(queue, store, runs=[*runs, synthetic])
            print(f"writer: {report.written:,} rows ({len(runs)} crawled runs + {args.writer_rows:,} synthetic "
                  f"results with their detections) in {report.seconds:.1f} s = {report.rows_per_second:,.0f} "
                  f"rows/s sustained (reading Redis, SQLite commit, acknowledging)", flush=True)
            m = redis_memory(queue, args.memory_domains)
            print(f"Redis memory: {m['queue_mb_per_million']:.0f} MB per million queued domains, "
                  f"{m['done_mb_per_million']:.0f} MB per million finished ones (the run's done set), "
                  f"measured with {m['domains']:,} domains", flush=True)
            print(json.dumps({"rounds": args.workers, "sites": args.sites}), file=sys.stderr)
        finally:
            queue.close()
            redis.stop()
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
