#!/usr/bin/env python3
"""Accuracy against hand-judged pages: the engine (default and, when available, wappalyzer
mode) and the reference engine's output, side by side.

    python bench/accuracy.py [--corpus ../shared/corpus/dev.jsonl.gz] [--labels bench/accuracy/labels.jsonl]
        [--reference ../shared/bench/reference/wappalyzer-core-dev.jsonl.gz] [--json] [--show 40]

A (page, technology) pair reported and judged present is a true positive; reported and judged
absent, a false positive; judged present and not reported, a false negative. A reported
technology that the labels do not judge is "unjudged": it is counted apart and listed so the
labels can be completed. Misses and false positives are grouped by the cause their proof shows
(loader snippet, script src, header, cookie, meta, html, comment, resource hint, implied, other).
See bench/accuracy/README.md for how the pages were picked and judged.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import inspect
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
LABELS = ROOT / "bench" / "accuracy" / "labels.jsonl"
PAGES = ROOT / "bench" / "accuracy" / "pages.txt"
CAUSES = (
    "loader",
    "script_src",
    "header",
    "cookie",
    "meta",
    "html",
    "comment",
    "resource_hint",
    "implied",
    "url",
    "other",
)


def load_labels(path: Path = LABELS) -> dict[str, dict[str, dict[str, Any]]]:
    """Labels by page id, then technology: {"present": bool, "proof": str}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                out[o["id"]] = {j["technology"]: j for j in o["judgements"]}
    return out


def load_cases(corpus: Path, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The corpus cases whose id is in ids."""
    want = set(ids)
    out = {}
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if o["id"] in want:
                out[o["id"]] = o
    return out


def load_reference(path: Path) -> dict[str, set[str]]:
    """Reference engine output: technology names by page id."""
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            out[str(o["id"])] = {t["name"] for t in o["technologies"]}
    return out


def classify(proof: str) -> str:
    """The cause a proof shows, by heuristics on its text.

    >>> classify("implied by WordPress (hard server requirement)")
    'implied'
    >>> classify('only a resource hint: <link rel="preconnect" href="https://x.example">')
    'resource_hint'
    >>> classify("<script src='/wp-includes/js/jquery/jquery.js'>")
    'script_src'
    >>> classify("var _paq = _paq || []; _paq.push(['trackPageView']);")
    'loader'
    >>> classify("header server: nginx")
    'header'
    """
    p = proof.strip().lower()
    if p.startswith("implied"):
        return "implied"
    if re.search(r"rel=.?(preconnect|dns-prefetch|preload|prefetch)", p) or "resource hint" in p:
        return "resource_hint"
    if p.startswith(("script_urls:", "src=")) or "only script_urls:" in p:
        return "script_src"
    if p.startswith("header ") or "content-security-policy" in p:
        return "header"
    if p.startswith("cookie "):
        return "cookie"
    if p.startswith("<!--") and not re.search(r"<(?:form|script|link|img|iframe|div)\b", p):
        return "comment"
    if p.startswith(("<meta", "meta ")):
        return "meta"
    if re.search(r"<script\b[^>]*\bsrc=", p):
        return "script_src"
    if re.search(
        r"createelement|\.src\s*=|function\s*\(|\bvar \w+|window\.|\.push\(|\w+\.\w+\(|\$\(|inline|loader snippet"
        r"|\btypeof\b|^\w+\s*=\s*\S|\w+\([\"'\[{]",
        p,
    ):
        return "loader"
    if p.startswith("<") or " class=" in p or "<a " in p:
        return "html"
    if re.search(r"\.js\b", p):
        return "script_src"
    if p.startswith("page url"):
        return "url"
    return "other"


def score(
    labels: Mapping[str, Mapping[str, Mapping[str, Any]]],
    reported: Mapping[str, Iterable[str]],
    library: Iterable[str] = (),
) -> dict[str, Any]:
    """Precision, recall, F1 and the lists of misses, false positives and unjudged pairs.

    With ``library`` (the technology names the signature library knows), also the recall over
    the judged-present technologies the library knows, since no rule can find the others.
    """
    tp = 0
    fps: list[tuple[str, str, str]] = []
    fns: list[tuple[str, str, str]] = []
    unjudged: list[tuple[str, str]] = []
    for pid, judged in labels.items():
        found = set(reported.get(pid, ()))
        for tech in sorted(found):
            j = judged.get(tech)
            if j is None:
                unjudged.append((pid, tech))
            elif j["present"]:
                tp += 1
            else:
                fps.append((pid, tech, j["proof"]))
        for tech, j in sorted(judged.items()):
            if j["present"] and tech not in found:
                fns.append((pid, tech, j["proof"]))
    p = tp / (tp + len(fps)) if tp + len(fps) else 0.0
    r = tp / (tp + len(fns)) if tp + len(fns) else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    known = set(library)
    fn_unknown = sum(1 for _, tech, _ in fns if known and tech not in known)
    fn_known = len(fns) - fn_unknown
    r_known = tp / (tp + fn_known) if tp + fn_known else 0.0
    return {
        "tp": tp,
        "fp": len(fps),
        "fn": len(fns),
        "unjudged": len(unjudged),
        "fn_not_in_library": fn_unknown,
        "recall_library": round(r_known, 4),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "false_positives": by_cause(fps),
        "misses": by_cause(fns),
        "unjudged_pairs": [f"{pid}: {tech}" for pid, tech in unjudged],
    }


def by_cause(items: Iterable[tuple[str, str, str]]) -> dict[str, list[str]]:
    """Group (page, technology, proof) triples by the cause of their proof."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for pid, tech, proof in items:
        out[classify(proof)].append(f"{tech} @ {pid}")
    return {c: out[c] for c in CAUSES if out.get(c)}


def engine_modes() -> list[tuple[str, dict[str, Any]]]:
    """Engine modes to measure: default, and wappalyzer when Engine.from_directories takes mode=."""
    from detector.engine.match import Engine

    modes: list[tuple[str, dict[str, Any]]] = [("default", {})]
    try:
        params = inspect.signature(Engine.from_directories).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "mode" in params:
        modes.append(("wappalyzer", {"mode": "wappalyzer"}))
    return modes


def run_engine(
    cases: Mapping[str, Mapping[str, Any]], **kwargs: Any
) -> dict[str, list[str]] | None:
    """Technologies the engine reports per page id, or None when this engine lacks the mode."""
    from detector.engine.cases import page_from_case
    from detector.engine.match import Engine

    try:
        engine = Engine.from_directories(None, **kwargs)
    except TypeError:
        return None
    return {
        pid: [d.technology for d in engine.detect(page_from_case(case))]
        for pid, case in cases.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "dev.jsonl.gz")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument(
        "--reference",
        type=Path,
        default=SHARED / "bench" / "reference" / "wappalyzer-core-dev.jsonl.gz",
    )
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    ap.add_argument("--show", type=int, default=40, help="list at most this many items per cause")
    args = ap.parse_args(argv)
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}; skipping the accuracy benchmark", file=sys.stderr)
        return 0
    labels = load_labels(args.labels)
    cases = load_cases(args.corpus, labels)
    missing = sorted(set(labels) - set(cases))
    if missing:
        print(
            f"{args.labels}: {len(missing)} page ids not in {args.corpus}: {', '.join(missing[:5])}",
            file=sys.stderr,
        )
        return 1
    from detector.engine.match import Engine

    library = Engine.from_directories(None).technologies
    results: dict[str, dict[str, Any]] = {}
    for name, kwargs in engine_modes():
        reported = run_engine(cases, **kwargs)
        if reported is not None:
            results[name] = score(labels, reported, library)
    if args.reference.exists():
        ref = load_reference(args.reference)
        results["reference"] = score(labels, {pid: ref.get(pid, set()) for pid in labels}, library)
    else:
        print(f"reference output not found: {args.reference}", file=sys.stderr)
    pages = len(labels)
    judgements = sum(len(v) for v in labels.values())
    present = sum(j["present"] for v in labels.values() for j in v.values())
    if args.json:
        print(
            json.dumps(
                {"pages": pages, "judgements": judgements, "present": present, "results": results},
                indent=1,
            )
        )
        return 0
    print(
        f"{pages} pages, {judgements} judgements ({present} present, {judgements - present} absent)"
    )
    names = list(results)
    print(f"{'':18}" + "".join(f"{n:>12}" for n in names))
    for key in (
        "precision",
        "recall",
        "f1",
        "tp",
        "fp",
        "fn",
        "unjudged",
        "fn_not_in_library",
        "recall_library",
    ):
        print(f"{key:18}" + "".join(f"{results[n][key]:>12}" for n in names))
    for n in names:
        res = results[n]
        for title, key in (("misses", "misses"), ("false positives", "false_positives")):
            groups = res[key]
            if not groups:
                continue
            print(f"\n{n}: {title} by cause")
            for cause, items in groups.items():
                more = f" (+{len(items) - args.show})" if len(items) > args.show else ""
                print(f"  {cause} ({len(items)}): {'; '.join(items[: args.show])}{more}")
        if res["unjudged_pairs"]:
            print(
                f"\n{n}: unjudged ({len(res['unjudged_pairs'])}): {'; '.join(res['unjudged_pairs'][: args.show])}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
