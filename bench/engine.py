#!/usr/bin/env python3
"""Engine speed against the peers, on the same pages in the same run.

    python bench/engine.py [--corpus ../shared/corpus/dev.jsonl.gz] [--peer wappalyzer-python3 ...]
                           [--repeat 3] [--no-peers] [--python] [--baseline TREE [--rounds 3]]

Prints the engine's load time, median / p95 / max milliseconds per page, pages/s and memory
(RSS after loading, peak RSS), then runs each peer through ../shared/bench/run_peer.py on the
same pages (installing it with setup_peers.sh when missing) and prints the ratio of medians.
Per-page time covers what the peers' time covers: building the page object from url, headers
and HTML, and the analysis.

``--baseline TREE`` times another checkout of detector (an older commit's worktree) against
this one instead: each round runs both in fresh processes, one after the other (alternating
which goes first), and the ratio of medians is printed per round and over the rounds, in wall
and in CPU time (CPU time is steadier on a shared machine), with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def engine_api() -> tuple[Any, Any, Any]:
    """(Engine, iter_cases, page_from_case) of the detector on sys.path (this layout or the
    older one of a baseline tree, where they lived in detector.engine and detector.cases)."""
    try:
        from detector.engine.cases import iter_cases, page_from_case
        from detector.engine.match import Engine
    except ImportError:
        from detector.cases import iter_cases, page_from_case  # type: ignore[no-redef]

        from detector.engine import Engine  # type: ignore[no-redef,attr-defined]
    return Engine, iter_cases, page_from_case


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc, else peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    """Peak resident set size of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


def run_engine(corpus: Path, repeat: int, accelerate: bool, cache: bool = True) -> dict[str, Any]:
    Engine, iter_cases, page_from_case = engine_api()
    before = rss_mb()
    t0 = time.perf_counter()
    engine = Engine.from_directories(None, accelerate=accelerate, cache=cache)
    load = time.perf_counter() - t0
    loaded = rss_mb()
    cases = list(iter_cases(corpus))
    times: list[list[float]] = [[] for _ in cases]
    cpu: list[list[float]] = [[] for _ in cases]
    found = 0
    for r in range(repeat):
        for i, case in enumerate(cases):
            static = {k: v for k, v in case.items() if k != "script_urls"}
            c1 = time.process_time()
            t1 = time.perf_counter()
            detections = engine.detect(page_from_case(static))
            times[i].append(time.perf_counter() - t1)
            cpu[i].append(time.process_time() - c1)
            if r == 0:
                found += len(detections)
    per_page = sorted(statistics.median(t) for t in times)
    n = len(per_page)
    return {
        "pages": n,
        "load_seconds": load,
        "median_ms": statistics.median(per_page) * 1000,
        "median_cpu_ms": statistics.median(statistics.median(t) for t in cpu) * 1000,
        "p95_ms": per_page[min(n - 1, int(0.95 * n))] * 1000,
        "max_ms": per_page[-1] * 1000,
        "pages_per_second": n / sum(per_page),
        "engine_mb": loaded - before,
        "rss_mb": loaded,
        "peak_rss_mb": peak_mb(),
        "technologies_per_page": found / n,
        "accelerator": engine.stats().accelerator,
    }


def run_peer(peer: str, corpus: Path, repeat: int) -> dict[str, Any] | None:
    bench = SHARED / "bench"
    runner = bench / "run_peer.py"
    if not runner.exists():
        print(f"  {peer}: ../shared/bench is not available", file=sys.stderr)
        return None
    listing = subprocess.run([sys.executable, str(runner), "--list"], capture_output=True, text=True, check=False).stdout
    if not any(line.split()[:2] == [peer, "installed"] for line in listing.splitlines()):
        print(f"  installing {peer} with setup_peers.sh ...", file=sys.stderr)
        subprocess.run(["bash", str(bench / "setup_peers.sh"), peer], check=False, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{peer}.jsonl.gz"
        cmd = [sys.executable, str(runner), "--peer", peer, "--input", str(corpus), "--output", str(out)]
        if repeat > 1:
            cmd += ["--repeat", str(repeat)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        summary_path = Path(str(out).replace(".jsonl.gz", ".summary.json"))
        if done.returncode != 0 or not summary_path.exists():
            print(f"  {peer} failed: {done.stderr.strip()[-400:]}", file=sys.stderr)
            return None
        return dict(json.loads(summary_path.read_text()))


def run_tree(tree: Path, corpus: Path, repeat: int) -> dict[str, Any]:
    """run_engine of the detector in ``tree``, in a fresh process (its own imports and cache)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree), "--corpus", str(corpus),
           "--repeat", str(repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tree), check=False)
    if done.returncode != 0:
        raise SystemExit(f"timing {tree} failed: {done.stderr.strip()[-600:]}")
    return dict(json.loads(done.stdout))


def compare(baseline: Path, corpus: Path, repeat: int, rounds: int) -> dict[str, Any]:
    """Both trees timed alternately for ``rounds`` rounds; print and return the ratios."""
    load_before = os.getloadavg()
    wall: list[float] = []
    cpu: list[float] = []
    for r in range(rounds):
        order = [("this", ROOT), ("baseline", baseline)]
        if r % 2:
            order.reverse()
        got = {name: run_tree(tree, corpus, repeat) for name, tree in order}
        mine, base = got["this"], got["baseline"]
        wall.append(mine["median_ms"] / base["median_ms"])
        cpu.append(mine["median_cpu_ms"] / base["median_cpu_ms"])
        print(f"round {r + 1}: this {mine['median_ms']:.2f} ms/page ({mine['median_cpu_ms']:.2f} CPU), "
              f"baseline {base['median_ms']:.2f} ms ({base['median_cpu_ms']:.2f} CPU) -> "
              f"{wall[-1]:.2f}x wall, {cpu[-1]:.2f}x CPU")
    load_after = os.getloadavg()
    result = {"baseline": str(baseline), "rounds": rounds, "ratio_wall": statistics.median(wall),
              "ratio_cpu": statistics.median(cpu), "load_before": load_before, "load_after": load_after}
    print(f"median ratio over {rounds} rounds: {result['ratio_wall']:.2f}x wall, {result['ratio_cpu']:.2f}x CPU "
          f"(this tree / {baseline}); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"on {os.cpu_count()} CPUs")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "dev.jsonl.gz")
    ap.add_argument("--peer", action="append", help="peer to compare with (repeatable); default wappalyzer-python3")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the corpus; per-page time is the median")
    ap.add_argument("--python", action="store_true", help="also time the pure-Python path")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--no-cache", action="store_true", help="compile the library from its YAML (cold load)")
    ap.add_argument("--baseline", type=Path, metavar="TREE",
                    help="time this checkout against another one (e.g. a worktree of an older commit)")
    ap.add_argument("--rounds", type=int, default=3, help="with --baseline: alternating rounds (default 3)")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    if args.worker:
        sys.path.insert(0, str(args.worker.resolve()))
        print(json.dumps(run_engine(args.corpus, args.repeat, accelerate=True)))
        return 0
    sys.path.insert(0, str(ROOT))
    if args.baseline:
        if not (args.baseline / "detector").is_dir():
            print(f"--baseline: no detector package in {args.baseline}", file=sys.stderr)
            return 2
        summary = compare(args.baseline.resolve(), args.corpus.resolve(), args.repeat, args.rounds)
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0
    results: dict[str, dict[str, Any] | None] = {}
    mine = run_engine(args.corpus, args.repeat, accelerate=True, cache=not args.no_cache)
    results["detector"] = mine
    print(
        f"detector ({mine['accelerator']}): {mine['pages']} pages, "
        f"load {mine['load_seconds']:.2f}s ({'no cache' if args.no_cache else 'compiled-engine cache'}), "
        f"median {mine['median_ms']:.2f} ms/page, p95 {mine['p95_ms']:.2f} ms, max {mine['max_ms']:.1f} ms, "
        f"{mine['pages_per_second']:.0f} pages/s, engine {mine['engine_mb']:.0f} MB (RSS {mine['rss_mb']:.0f} MB, "
        f"peak {mine['peak_rss_mb']:.0f} MB), {mine['technologies_per_page']:.2f} technologies/page"
    )
    if args.python:
        py = run_engine(args.corpus, 1, accelerate=False)
        results["detector-python"] = py
        print(f"detector (pure Python): median {py['median_ms']:.2f} ms/page, p95 {py['p95_ms']:.2f} ms, "
              f"load {py['load_seconds']:.2f}s")
    if not args.no_peers:
        for peer in args.peer or ["wappalyzer-python3"]:
            summary = run_peer(peer, args.corpus, args.repeat)
            results[peer] = summary
            if summary is None:
                continue
            median_ms = float(summary["median_seconds_per_page"]) * 1000
            p95_ms = float(summary["p95_seconds_per_page"]) * 1000
            print(
                f"{peer}: median {median_ms:.2f} ms/page, p95 {p95_ms:.2f} ms, load {summary['load_seconds']:.2f}s, "
                f"{summary['pages_per_second']} pages/s -> detector is {median_ms / mine['median_ms']:.1f}x faster "
                f"(median), {p95_ms / mine['p95_ms']:.1f}x (p95)"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
