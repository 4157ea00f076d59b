#!/usr/bin/env python3
"""Run the engine over a corpus (JSON Lines cases) and compare with the reference engine.

    python bench/conformance.py [--corpus ../shared/corpus/dev.jsonl.gz] [--output out.jsonl]
        [--reference ../shared/bench/reference/wappalyzer-core-dev.jsonl.gz] [--python]
        [--mode wappalyzer|detector]

Writes one line per page in the peers' format ({"id", "technologies": [{"name", "version",
"categories"}], "seconds"}) and prints precision / recall / F1 of the (page, technology)
pairs against the reference, over what a static page can show.  The engine runs in its
"wappalyzer" mode (``--compat wappalyzer``) unless ``--mode detector`` is given.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.engine.cases import iter_cases, page_from_case
from detector.engine.match import Engine


def load_reference(path: Path) -> dict[str, dict[str, str | None]]:
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            out[str(o["id"])] = {t["name"]: t.get("version") for t in o["technologies"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = ROOT.parent / "shared"
    ap.add_argument("--corpus", type=Path, default=shared / "corpus" / "dev.jsonl.gz")
    ap.add_argument("--reference", type=Path, default=shared / "bench" / "reference" / "wappalyzer-core-dev.jsonl.gz")
    ap.add_argument("--output", type=Path, default=ROOT / "bench" / "out" / "detector-dev.jsonl")
    ap.add_argument("--python", action="store_true", help="pure-Python path (no Hyperscan, no RE2)")
    ap.add_argument("--show", type=int, default=15)
    ap.add_argument("--mode", choices=("wappalyzer", "detector"), default="wappalyzer",
                    help="engine mode (default wappalyzer: the reference's semantics, which this bench measures)")
    ap.add_argument("--script-urls", action="store_true",
                    help="also use the HAR cases' script_urls (the reference engine ignores them)")
    args = ap.parse_args()
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    engine = Engine.from_directories(None, accelerate=not args.python, mode=args.mode)
    print(f"engine loaded in {time.perf_counter() - t0:.2f}s ({engine.stats().accelerator})")
    ref = load_reference(args.reference)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tp = fp = fn = 0
    vagree = vtotal = 0
    misses: collections.Counter[str] = collections.Counter()
    extras: collections.Counter[str] = collections.Counter()
    where: dict[str, list[str]] = collections.defaultdict(list)
    with args.output.open("w", encoding="utf-8") as out:
        for case in iter_cases(args.corpus):
            if not args.script_urls:
                case = {k: v for k, v in case.items() if k != "script_urls"}
            page = page_from_case(case)
            t1 = time.perf_counter()
            found = engine.detect(page)
            dt = time.perf_counter() - t1
            mine = {d.technology: d.version for d in found}
            out.write(json.dumps({"id": case["id"], "technologies": [
                {"name": d.technology, "version": d.version, "categories": list(d.categories)} for d in found],
                "seconds": round(dt, 6)}) + "\n")
            r = ref.get(str(case["id"]), {})
            tp += len(r.keys() & mine.keys())
            fn += len(r.keys() - mine.keys())
            fp += len(mine.keys() - r.keys())
            for name in r.keys() & mine.keys():
                vtotal += 1
                vagree += (r[name] or None) == (mine[name] or None)
                if (r[name] or None) != (mine[name] or None):
                    where["version " + name].append(f"{case['id']}: ref {r[name]} mine {mine[name]}")
            for name in r.keys() - mine.keys():
                misses[name] += 1
                where["miss " + name].append(case["id"])
            for name in mine.keys() - r.keys():
                extras[name] += 1
                where["extra " + name].append(case["id"])
    p = tp / (tp + fp) if tp + fp else 0.0
    rc = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
    print(f"pairs: reference {tp + fn}, detector {tp + fp}, agree {tp}")
    print("missed:", ", ".join(f"{n} x{k}" for n, k in misses.most_common(args.show)) or "-")
    print("extra:", ", ".join(f"{n} x{k}" for n, k in extras.most_common(args.show)) or "-")
    print(f"versions agree on {vagree}/{vtotal} common pairs")
    print(f"precision {p:.4f} recall {rc:.4f} F1 {f1:.4f}")
    detail = args.output.with_suffix(".disagreements.json")
    detail.write_text(json.dumps(where, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
