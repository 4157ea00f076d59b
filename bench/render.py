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

    def lookup(host: str) -> Site | None:
        if not (host.startswith("p") and host.endswith(".test") and host[1:-5].isdigit()):
            return None
        n = int(host[1:-5])
        if n >= len(pages):
            return None
        body = pages[n]["html"].encode("utf-8", "replace")
        return Site(host, {"/": Route(200, page_headers(pages[n]), body)}, https=False)

    VirtualHostProxy(lookup).serve_forever()


#: Captured headers that would not describe the body served here (already decoded, re-framed).
_FRAMING = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection", "keep-alive",
                      "content-type", "location", "strict-transport-security", "alt-svc"})


def page_headers(case: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The response headers to serve a corpus page with: its captured ones (cookies too) where
    the corpus has them, less framing; always an HTML content type."""
    out = [("Content-Type", "text/html; charset=utf-8")]
    for name, values in (case.get("headers") or {}).items():
        if name.lower() not in _FRAMING:
            out += [(name, str(v)) for v in values]
    return tuple(out)


def cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (a crawl and its browser)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every process: (parent pid, CPU seconds with its reaped children), from /proc."""
    from detector.crawl.render import process_table

    return {pid: (ppid, cpu) for pid, (_name, _state, ppid, cpu) in process_table().items()}


def _descendants(roots: set[int], stats: dict[int, tuple[int, float]]) -> set[int]:
    """The roots and every process below them."""
    tree, changed = set(roots), True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of the live descendants of ``root`` (the browser's processes), with their reaped children."""
    stats = _proc_stats()
    return sum(stats[pid][1] for pid in _descendants({root}, stats) - {root} if pid in stats)


def load() -> str:
    """The machine's load averages (1, 5, 15 min), to print beside figures."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def start_server(path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--corpus", str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def pss_mb(pids: list[int]) -> float:
    """Proportional memory of processes and all their descendants, in MiB (shared pages split)."""
    tree = _descendants(set(pids), _proc_stats())
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def throughput(proxy: str, hosts: list[str], concurrency: int, timeout: float = 10.0) -> dict[str, Any]:
    """Render every host once at ``concurrency``; pages/s after the browser is up, peak memory,
    the browser's CPU seconds per page, and how long pages took from when they got a slot."""
    from detector.crawl.render import Renderer, RenderSettings
    from detector.engine.browser import browser_probes
    from detector.engine.signatures import load_signatures

    chains, props = browser_probes(load_signatures(None))
    renderer = Renderer(chains, props, RenderSettings(proxy=proxy, concurrency=concurrency, timeout=timeout))
    try:
        await renderer.start()
        await renderer.render("http://p0.test/")  # warm up
        idle = pss_mb(renderer.browser_pids())
        peak = idle
        cpu0 = tree_cpu_seconds(os.getpid())
        started = time.monotonic()
        tasks = [asyncio.ensure_future(renderer.render(f"http://{h}/")) for h in hosts]
        while not all(t.done() for t in tasks):
            peak = max(peak, pss_mb(renderer.browser_pids()))
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - started
        cpu = tree_cpu_seconds(os.getpid()) - cpu0
        snaps = [t.result() for t in tasks]
        outcomes = Counter(s.outcome for s in snaps)
    finally:
        await renderer.close()
    page_seconds = sorted(s.seconds for s in snaps)  # from when the page got its slot
    return {"concurrency": concurrency, "pages": len(hosts), "seconds": round(elapsed, 2),
            "pages_per_second": round(len(hosts) / elapsed, 2),
            "read_per_second": round(outcomes.get("rendered", 0) / elapsed, 2), "idle_mb": round(idle), "peak_mb": round(peak),
            "per_context_mb": round((peak - idle) / concurrency, 1), "outcomes": dict(outcomes),
            "browser_cpu_per_page": round(cpu / len(hosts), 2),
            "page_seconds_median": page_seconds[len(page_seconds) // 2], "page_seconds_max": page_seconds[-1],
            "contexts": renderer.contexts}


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
    """``detector crawl`` of the hosts (homepages only) with ``--render mode``: wall and CPU seconds."""
    domains = tmp / "domains.txt"
    domains.write_text("\n".join(hosts) + "\n")
    db = tmp / f"crawl-{mode}.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DETECTOR_RENDER": mode}
    load_before, cpu0 = load(), cpu_seconds()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "detector", "crawl", str(domains), "--db", str(db), "--proxy", proxy,
                           "--no-dns",
                           "--pages", "0", "--ignore-robots", "--retries", "0", "--render", mode, "--json",
                           "--no-progress"], capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    cpu = cpu_seconds() - cpu0
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
    return {"mode": mode, "sites": len(hosts), "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "load": f"{load_before} -> {load()}", "render": renders, "detections": techs,
            "rendered_only": rendered_only, "db": db}


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


def crawl_recall(proxy: str, pages: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Precision and recall on the accuracy labels' pages, crawled: each labelled page is served
    (with its captured headers) as ``p<n>.test`` through the bench's local proxy, then crawled
    with each ``--render`` mode and its detections scored against the labels."""
    import sqlite3

    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import LABELS, load_labels, score  # type: ignore[import-not-found]

    from detector.engine.signatures import load_signatures

    labels = load_labels(LABELS)
    index = {case["id"]: n for n, case in enumerate(pages)}
    ids = [pid for pid in labels if pid in index]
    host_of = {pid: f"p{index[pid]}.test" for pid in ids}
    known = set(load_signatures(None).signatures)
    labelled = {pid: labels[pid] for pid in ids}
    out: dict[str, Any] = {"pages": len(ids), "modes": {}}
    reported: dict[str, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            run = crawl_time(proxy, [host_of[pid] for pid in ids], mode, Path(tmp))
            conn = sqlite3.connect(run["db"])
            found: dict[str, list[str]] = {}
            for domain, tech in conn.execute("SELECT domain, technology FROM detections"):
                found.setdefault(domain, []).append(tech)
            conn.close()
            reported[mode] = {pid: found.get(host_of[pid], []) for pid in ids}
            sc = score(labelled, reported[mode], known)
            out["modes"][mode] = {**{k: sc[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")},
                                  "seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"], "render": run["render"]}
    if "off" in reported:
        for mode in modes:
            if mode != "off":
                out["modes"][mode]["added"] = sorted(
                    f"{t} @ {pid}" for pid in ids for t in set(reported[mode][pid]) - set(reported["off"][pid]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--pages", type=int, default=32, help="pages rendered per concurrency level")
    ap.add_argument("--sites", type=int, default=0, help="sites for the crawl comparison (0: the whole corpus)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--parts", default="share,throughput,crawl,recall,accuracy",
                    help="comma-separated parts to run (default: all): share, throughput, crawl (auto vs off on "
                         "the corpus), recall (accuracy pages, rendered by the bench), accuracy (accuracy pages "
                         "served and crawled with --render off, auto and on, scored against the labels)")
    ap.add_argument("--render-modes", default="off,auto,on", help="modes the accuracy part crawls with")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per page in the throughput part")
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
        print(f"the advisor names {share['rendered']}/{share['sites']} sites ({share['share']:.1%}; before the "
              f"render budget, which the crawl part applies); first reasons "
              f"{share['first_reason']}; static detection + advice "
              f"{share['advice_ms_per_page_with_detection']} ms/page", flush=True)
    server, proxy = start_server(args.corpus)
    try:
        hosts = [f"p{n}.test" for n in range(1, min(len(pages), args.pages + 1))]
        for c in (1, 4, 8) if "throughput" in parts else ():
            before = load()
            r = asyncio.run(throughput(proxy, hosts, c, args.timeout))
            print(f"concurrency {c}: {r['pages']} pages in {r['seconds']} s = {r['pages_per_second']} pages/s "
                  f"({r['read_per_second']}/s rendered in time); browser CPU {r['browser_cpu_per_page']} s/page; "
                  f"a page takes {r['page_seconds_median']} s (median, max {r['page_seconds_max']}) from its slot; "
                  f"{r['contexts']} contexts; "
                  f"browser {r['idle_mb']} MiB idle, {r['peak_mb']} MiB peak -> {r['per_context_mb']} MiB per "
                  f"open context (PSS); outcomes {r['outcomes']}; load {before} -> {load()}", flush=True)
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
        if "accuracy" in parts:
            r = crawl_recall(proxy, pages, args.render_modes.split(","))
            print(f"accuracy pages crawled ({r['pages']} labelled pages served locally with their headers and "
                  "inline scripts; the corpus keeps no external script bodies):", flush=True)
            for mode, m in r["modes"].items():
                print(f"  --render {mode:<4} precision {m['precision']:.3f} recall {m['recall']:.3f} f1 {m['f1']:.3f} "
                      f"(tp {m['tp']}, fp {m['fp']}, fn {m['fn']}); {m['seconds']} s, {m['cpu_seconds']} CPU-s; "
                      f"render {m['render']}", flush=True)
                if m.get("added"):
                    print(f"    added over off: {', '.join(m['added'])}", flush=True)
    finally:
        server.terminate()
        server.wait()


def crawl_both(proxy: str, sites: list[str]) -> None:
    """Print crawl time with --render off, then auto."""
    with tempfile.TemporaryDirectory() as tmp:
        off = crawl_time(proxy, sites, "off", Path(tmp))
        auto = crawl_time(proxy, sites, "auto", Path(tmp))
    print(f"crawl --render off:  {off['sites']} sites in {off['seconds']} s ({off['cpu_seconds']} CPU-s), "
          f"{off['detections']} detections; load {off['load']}", flush=True)
    print(f"crawl --render auto: {auto['sites']} sites in {auto['seconds']} s "
          f"({auto['seconds'] / off['seconds']:.2f}x off; {auto['cpu_seconds']} CPU-s = "
          f"{auto['cpu_seconds'] / max(0.1, off['cpu_seconds']):.2f}x), {auto['detections']} detections, "
          f"{auto['rendered_only']} seen only by the browser; render outcomes {auto['render']}; load {auto['load']}",
          flush=True)


if __name__ == "__main__":
    main()
