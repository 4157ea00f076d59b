"""Rendered-tier benchmark: pages/s at concurrency 1, 4 and 8, memory per context, the share
of corpus sites ``--render auto`` renders, crawl time with ``--render auto`` against ``off``,
and recall with and without the tier on the accuracy benchmark's labelled pages.

    python3 bench/render.py                      # everything (a few minutes on 2 cores)
    python3 bench/render.py --pages 24 --sites 150

Everything stays on 127.0.0.1: the dev corpus pages (../shared/corpus/dev.jsonl.gz) are
served by a multi-host server in its own process, page ``n`` as ``http://p<n>.test/``, and the
browser reaches it through ``--proxy``.  The corpus keeps no script bodies, so inline scripts
run and external scripts fail (the proxy answers 502 for every other host): the figures show
the tier on what the corpus holds, a lower bound of what it finds on the live web.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl.gz"


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """The corpus pages that have HTML, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [case for case in map(json.loads, f) if case.get("html")]


def serve(path: Path) -> None:
    """Serve page n of the corpus as http://p<n>.test/; print the proxy URL."""
    from detector.demo.vhosts import Route, Site, VirtualHostProxy

    pages = load_corpus(path)
    html_type = (("Content-Type", "text/html; charset=utf-8"),)

    def lookup(host: str) -> Site | None:
        if not (host.startswith("p") and host.endswith(".test") and host[1:-5].isdigit()):
            return None
        n = int(host[1:-5])
        if n >= len(pages):
            return None
        return Site(host, {"/": Route(200, html_type, pages[n]["html"].encode("utf-8", "replace"))}, https=False)

    VirtualHostProxy(lookup).serve_forever()


def start_server(path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--corpus", str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def pss_mb(pids: list[int]) -> float:
    """Proportional memory of processes and all their descendants, in MiB (shared pages split)."""
    tree = set(pids)
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(raw[raw.rfind(")") + 2 :].split()[1])
            except OSError:
                continue
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def throughput(proxy: str, hosts: list[str], concurrency: int) -> dict[str, Any]:
    """Render every host once at ``concurrency``; pages/s after the browser is up, peak memory."""
    from detector.crawl.render import Renderer, RenderSettings
    from detector.engine.browser import browser_probes
    from detector.engine.signatures import load_signatures

    chains, props = browser_probes(load_signatures(None))
    renderer = Renderer(chains, props, RenderSettings(proxy=proxy, concurrency=concurrency))
    try:
        await renderer.start()
        await renderer.render("http://p0.test/")  # warm up
        idle = pss_mb(renderer.browser_pids())
        peak = idle
        started = time.monotonic()
        tasks = [asyncio.ensure_future(renderer.render(f"http://{h}/")) for h in hosts]
        while not all(t.done() for t in tasks):
            peak = max(peak, pss_mb(renderer.browser_pids()))
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - started
        outcomes = Counter(t.result().outcome for t in tasks)
    finally:
        await renderer.close()
    return {"concurrency": concurrency, "pages": len(hosts), "seconds": round(elapsed, 2),
            "pages_per_second": round(len(hosts) / elapsed, 2),
            "read_per_second": round(outcomes.get("rendered", 0) / elapsed, 2), "idle_mb": round(idle), "peak_mb": round(peak),
            "per_context_mb": round((peak - idle) / concurrency, 1), "outcomes": dict(outcomes)}


def auto_share(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """How many corpus sites ``--render auto`` renders, and why."""
    from detector.engine.browser import RenderAdvisor, static_technologies
    from detector.engine.cases import page_from_case
    from detector.engine.match import Engine

    engine = Engine.from_directories(None)
    advisor = RenderAdvisor(engine.library)
    why: Counter[str] = Counter()
    rendered = 0
    started = time.monotonic()
    for case in pages:
        page = page_from_case(case)
        found = static_technologies(engine.detect(page))
        reasons = advisor.reasons(page.html, found)
        if reasons:
            rendered += 1
            why[reasons[0].split(":")[0].split(" ")[0]] += 1
    ms = (time.monotonic() - started) * 1000 / max(1, len(pages))
    return {"sites": len(pages), "rendered": rendered, "share": round(rendered / max(1, len(pages)), 3),
            "first_reason": dict(why.most_common()), "advice_ms_per_page_with_detection": round(ms, 2)}


def crawl_time(proxy: str, hosts: list[str], mode: str, tmp: Path) -> dict[str, Any]:
    """``detector crawl`` of the hosts (homepages only) with ``--render mode``."""
    domains = tmp / "domains.txt"
    domains.write_text("\n".join(hosts) + "\n")
    db = tmp / f"crawl-{mode}.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DETECTOR_RENDER": mode}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "detector", "crawl", str(domains), "--db", str(db), "--proxy", proxy,
                           "--no-dns",
                           "--pages", "0", "--ignore-robots", "--retries", "0", "--render", mode, "--json",
                           "--no-progress"], capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"crawl --render {mode} failed: {proc.stderr[-2000:]}")
    import sqlite3

    conn = sqlite3.connect(db)
    renders = dict(conn.execute("SELECT COALESCE(render, 'static only'), COUNT(*) FROM scans GROUP BY 1").fetchall())
    techs = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
    rendered_only = sum(
        1 for (evidence,) in conn.execute("SELECT evidence FROM detections")
        if all(e.get("tier") == "rendered" or e.get("source") == "implied" for e in json.loads(evidence or "[]"))
        and any(e.get("tier") == "rendered" for e in json.loads(evidence or "[]")))
    conn.close()
    return {"mode": mode, "sites": len(hosts), "seconds": round(seconds, 1), "render": renders,
            "detections": techs, "rendered_only": rendered_only}


async def recall(proxy: str, pages: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """Recall and precision on the accuracy labels' pages: static tier, then static + rendered."""
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import LABELS, load_labels, score  # type: ignore[import-not-found]

    from detector.crawl.render import Renderer, RenderSettings
    from detector.engine.browser import browser_probes
    from detector.engine.cases import page_from_case
    from detector.engine.match import Engine
    from detector.engine.page import Page

    labels = load_labels(LABELS)
    index = {case["id"]: n for n, case in enumerate(pages)}
    ids = [pid for pid in labels if pid in index]
    engine = Engine.from_directories(None)
    chains, props = browser_probes(engine.library)
    renderer = Renderer(chains, props, RenderSettings(proxy=proxy, concurrency=4, timeout=timeout))
    try:
        snaps = await asyncio.gather(*(renderer.render(f"http://p{index[pid]}.test/") for pid in ids))
    finally:
        await renderer.close()
    from detector.engine.browser import RenderAdvisor, static_technologies

    advisor = RenderAdvisor(engine.library)
    static: dict[str, list[str]] = {}
    both: dict[str, list[str]] = {}
    auto: dict[str, list[str]] = {}
    for pid, snap in zip(ids, snaps):
        page = page_from_case(pages[index[pid]])
        static_found = engine.detect_site([page])
        static[pid] = [d.technology for d in static_found]
        extra = [Page(url=page.url, html=snap.html, js=snap.js, xhr=tuple(snap.xhr),
                      dom_properties=snap.dom_properties, tier="rendered")] if snap.read else []
        both[pid] = [d.technology for d in engine.detect_site([page, *extra])]
        wanted = advisor.reasons(page.html, static_technologies(static_found))
        auto[pid] = both[pid] if wanted else static[pid]
    labelled = {pid: labels[pid] for pid in ids}
    s, b = score(labelled, static, engine.technologies), score(labelled, both, engine.technologies)
    a = score(labelled, auto, engine.technologies)
    gained = sorted({f"{t} @ {pid}" for pid in ids for t in set(both[pid]) - set(static[pid])})
    keys = ("tp", "fp", "fn", "precision", "recall", "f1")
    return {"pages": len(ids), "rendered": Counter(s.outcome for s in snaps),
            "static": {k: s[k] for k in keys}, "static+rendered": {k: b[k] for k in keys},
            "auto": {k: a[k] for k in keys}, "auto_rendered": sum(1 for pid in ids if auto[pid] is both[pid]),
            "added": gained}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--pages", type=int, default=32, help="pages rendered per concurrency level")
    ap.add_argument("--sites", type=int, default=0, help="sites for the crawl comparison (0: the whole corpus)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--parts", default="share,throughput,crawl,recall",
                    help="comma-separated parts to run (default: all)")
    ap.add_argument("--recall-timeout", type=float, default=30.0,
                    help="seconds per page when measuring recall (what the tier finds, not how fast)")
    args = ap.parse_args()
    if args.serve:
        serve(args.corpus)
        return
    from detector.crawl.render import unavailable_reason

    reason = unavailable_reason()
    if reason or not args.corpus.exists():
        print(f"skipped: {reason or f'corpus not found: {args.corpus}'}", file=sys.stderr)
        return
    pages = load_corpus(args.corpus)
    print(f"corpus: {len(pages)} pages with HTML; machine: {os.cpu_count()} cores, shared with other work "
          "while this ran", flush=True)
    parts = set(args.parts.split(","))
    share = auto_share(pages) if "share" in parts else None
    if share:
        print(f"auto renders {share['rendered']}/{share['sites']} sites ({share['share']:.1%}); first reasons "
              f"{share['first_reason']}; static detection + advice "
              f"{share['advice_ms_per_page_with_detection']} ms/page", flush=True)
    server, proxy = start_server(args.corpus)
    try:
        hosts = [f"p{n}.test" for n in range(1, min(len(pages), args.pages + 1))]
        for c in (1, 4, 8) if "throughput" in parts else ():
            r = asyncio.run(throughput(proxy, hosts, c))
            print(f"concurrency {c}: {r['pages']} pages in {r['seconds']} s = {r['pages_per_second']} pages/s "
                  f"({r['read_per_second']}/s rendered in time); "
                  f"browser {r['idle_mb']} MiB idle, {r['peak_mb']} MiB peak -> {r['per_context_mb']} MiB per "
                  f"open context (PSS); outcomes {r['outcomes']}", flush=True)
        sites = [f"p{n}.test" for n in range(len(pages) if not args.sites else min(args.sites, len(pages)))]
        if "crawl" in parts:
            crawl_both(proxy, sites)
        if "recall" in parts:
            r = asyncio.run(recall(proxy, pages, args.recall_timeout))
            print(f"accuracy pages ({r['pages']}, {args.recall_timeout:g} s per page; rendered: {dict(r['rendered'])}):",
                  flush=True)
            print(f"  static:          {r['static']}")
            print(f"  static+rendered: {r['static+rendered']}  (--render on)")
            print(f"  auto:            {r['auto']}  ({r['auto_rendered']} of {r['pages']} pages rendered)")
            print(f"  added by the tier: {', '.join(r['added']) or 'nothing'}")
    finally:
        server.terminate()
        server.wait()


def crawl_both(proxy: str, sites: list[str]) -> None:
    """Print crawl time with --render off, then auto."""
    with tempfile.TemporaryDirectory() as tmp:
        off = crawl_time(proxy, sites, "off", Path(tmp))
        auto = crawl_time(proxy, sites, "auto", Path(tmp))
    print(f"crawl --render off:  {off['sites']} sites in {off['seconds']} s, {off['detections']} detections",
          flush=True)
    print(f"crawl --render auto: {auto['sites']} sites in {auto['seconds']} s "
          f"({auto['seconds'] / off['seconds']:.2f}x off), {auto['detections']} detections, "
          f"{auto['rendered_only']} seen only by the browser; render outcomes {auto['render']}", flush=True)


if __name__ == "__main__":
    main()
