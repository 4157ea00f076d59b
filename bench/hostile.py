#!/usr/bin/env python3
"""What hostile input costs: an alias-bomb library, a crawl with a pathological user pattern,
and the fault matrix case by case.  Prints times and peak memory.

    python bench/hostile.py [--skip-matrix]

1. ``detector signatures check`` and ``detector crawl --signatures`` on a library whose one
   file is a YAML "billion laughs" (9**12 strings when expanded): wall time and peak RSS of
   the process (both must refuse it: < 5 s, < 500 MB).
2. ``detector crawl`` of 4 local sites whose homepage makes ``(a+)+!(?=x)`` backtrack on
   Python's ``re`` (minutes per page unbounded): wall time, what stderr reported.
3. The fault matrix of tests/fault_cases.py (one crawl, cases one at a time): per case, the
   outcome, the time from scan start to detection end, the crawler's peak RSS when the case
   was done and how much the case raised it.

Every byte stays on 127.0.0.1 (local proxy, reserved ``.test`` names).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.demo.vhosts import Route, Site, VirtualHostProxy
from tests.fault_cases import CASES, run_matrix, start_server
from tests.test_bounded_signatures import BACKTRACKER, TRAP, alias_bomb

SIGNATURES = ROOT / "tests" / "signatures"


def measured(args: list[str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MB, exit code, stdout and stderr) of ``python -m detector ARGS``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DETECTOR_EGRESS": "loopback"}
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "detector", *args], stdout=err, stderr=err,
                                cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return time.monotonic() - started, usage.ru_maxrss / 1024, proc.returncode, text


def library(root: Path, name: str, text: str) -> Path:
    (root / "misc").mkdir(parents=True)
    shutil.copy(SIGNATURES / "categories.yaml", root / "categories.yaml")
    (root / "misc" / name).write_text(text, encoding="utf-8")
    return root


def bench_alias_bomb(tmp: Path) -> None:
    lib = library(tmp / "bomb", "bomb.yaml", alias_bomb())
    listing = tmp / "one.txt"
    listing.write_text("shop.test\n", encoding="utf-8")
    print("alias bomb (9**12 strings when expanded):")
    import resource

    from detector.engine.signatures import load_signatures
    from detector.errors import SignatureError

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        load_signatures([lib])
    except SignatureError:
        pass
    print(f"  load_signatures      {time.perf_counter() - started:5.3f} s  (in this process; peak RSS "
          f"{before:.0f} -> {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    for label, args in (("signatures check", ["signatures", "check", "--signatures", str(lib)]),
                        ("crawl --signatures", ["crawl", str(listing), "--db", str(tmp / "bomb.db"),
                                                "--signatures", str(lib)])):
        seconds, mb, code, err = measured(args)
        said = next((line for line in err.splitlines() if "alias" in line), err.strip()[-120:])
        print(f"  {label:20} {seconds:5.2f} s  peak {mb:5.0f} MB  exit {code}  {said[-110:]}")


def bench_pathological(tmp: Path) -> None:
    lib = library(tmp / "trap", "backtracker.yaml", BACKTRACKER)
    html = (("Content-Type", "text/html; charset=utf-8"),)
    sites = {f"trap{n}.test": Site(f"trap{n}.test", {"/": Route(200, html, TRAP.encode())}) for n in range(4)}
    proxy = VirtualHostProxy(sites).start()
    listing = tmp / "trap.txt"
    listing.write_text("\n".join(sites) + "\n", encoding="utf-8")
    print("crawl with (a+)+!(?=x) in a user library, 4 sites whose homepage triggers it:")
    try:
        for workers in (0, 1):
            seconds, mb, code, err = measured(
                ["crawl", str(listing), "--db", str(tmp / f"trap{workers}.db"), "--proxy", proxy.url,
                 "--signatures", str(SIGNATURES), "--signatures", str(lib), "--workers", str(workers),
                 "--retries", "0"])
            reports = [line for line in err.splitlines() if "switched off" in line]
            print(f"  --workers {workers}: {seconds:5.2f} s  peak {mb:4.0f} MB (crawler)  exit {code}  "
                  f"{len(reports)} report(s)")
        if reports:
            print(f"  stderr: {reports[0][:160]}...")
    finally:
        proxy.stop()


def bench_matrix(tmp: Path) -> None:
    server = start_server()
    try:
        matrix = run_matrix(server.url, tmp / "matrix")
    finally:
        server.stop()
    print(f"fault matrix: {len(CASES)} cases in one crawl, {matrix.seconds:.1f} s in all (exit {matrix.code})")
    print(f"  {'case':28} {'recorded':24} {'time':>6} {'peak':>7} {'grew':>6}")
    for case in CASES:
        o = matrix.outcomes.get(case.host)
        if o is None:
            print(f"  {case.host:28} (no scan)")
            continue
        got = o.scan.get("error_kind") or ("ok " + ", ".join(d for d in o.detections if " " in d)).strip()
        mark = "" if (o.scan.get("status"), o.scan.get("error_kind")) == (case.status, case.kind) else "  UNEXPECTED"
        print(f"  {case.host:28} {got[:24]:24} {o.seconds:5.2f}s {o.peak_mb:5.0f}MB {o.grew_mb:+5.0f}MB{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    with tempfile.TemporaryDirectory(prefix="detector-hostile-") as tmp:
        bench_alias_bomb(Path(tmp))
        bench_pathological(Path(tmp))
        if not args.skip_matrix:
            bench_matrix(Path(tmp))


if __name__ == "__main__":
    main()
