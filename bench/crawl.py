"""Crawl benchmark: thousands of local sites, pages/s with detection off and on, peak RSS,
and a 1,000,000-line input accepted with bounded memory.

    python3 bench/crawl.py                 # 2,000 sites each way + the 1M-line run
    python3 bench/crawl.py --sites 500 --million-seconds 10
    python3 bench/crawl.py --compare dns --sites 500 --million-lines 0   # --dns off vs on

With ``--compare dns`` both crawls detect, and a local DNS server (dnslib, in its own
process, UDP and TCP on 127.0.0.1) answers every ``<name>.test`` with a small zone (MX, a
long SPF record, verification TXT, NS, SOA, www CNAME, _dmarc TXT); the crawl asks it with
``--resolver``.

Everything stays on 127.0.0.1: a multi-host server (detector.demo.vhosts, in its own process)
invents a small realistic site for any ``<prefix><n>.test`` host from the demo sites' pages,
and the crawler reaches it with ``--proxy``.  Sites are served over http only and robots.txt
is not fetched, so every request is a page.  The engines load before crawling starts; the
time measured is from the spider opening (engines ready) to the last site stored.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = re.compile(r"^([a-z0-9]+?)(\d+)\.test$")


# ----------------------------------------------------------------------------- the server


def serve() -> None:
    """Run the multi-host server in this process; print its URL on stdout."""
    from detector.demo import demo_sites
    from detector.demo.vhosts import Route, Site, VirtualHostProxy

    pages: list[bytes] = []
    extra: list[Route] = []
    for site in demo_sites().values():
        home = site.routes.get("/")
        if home is not None and home.status == 200 and home.body:
            pages.append(home.body)
            extra.extend(r for p, r in site.routes.items() if p != "/" and p.endswith(".html") and r.status == 200)
    html_type = (("Content-Type", "text/html; charset=utf-8"), ("Server", "nginx"))
    nav = b'<nav><a href="/pricing">Pricing</a> <a href="/blog/">Blog</a> <a href="/about">About</a></nav>'

    def lookup(host: str) -> Site | None:
        m = HOST.match(host)
        if not m:
            return None
        n = int(m.group(2))
        body = pages[n % len(pages)]
        body = body.replace(b"<body", nav + b"<body", 1) if b"<body" in body else nav + body
        # Every other path is a page too, so each site has its homepage and two more pages.
        return Site(
            host,
            {"/": Route(200, html_type, body)},
            https=False,
            not_found=Route(200, html_type, extra[n % len(extra)].body),
        )

    VirtualHostProxy(lookup).serve_forever()


def serve_dns() -> None:
    """Run a DNS server answering every name with a synthetic zone; print HOST:PORT on stdout."""
    from dnslib import QTYPE, RR
    from dnslib.server import BaseResolver, DNSServer

    spf = ('"v=spf1 include:_spf.google.com include:mktomail.com include:_spf.salesforce.com " '
           '"include:servers.mcsv.net include:sendgrid.net ~all"')

    class Wildcard(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply()
            name = str(request.q.qname)
            qtype = QTYPE[request.q.qtype]
            zone = {
                "MX": [f"{name} 300 IN MX 10 aspmx.l.google.com."],
                "TXT": [f"{name} 300 IN TXT {spf}", f'{name} 300 IN TXT "MS=ms12345678"']
                if not name.startswith("_dmarc.") else [f'{name} 300 IN TXT "v=DMARC1; p=none"'],
                "NS": [f"{name} 300 IN NS ns-1.awsdns-01.org."],
                "SOA": [f"{name} 300 IN SOA ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"],
                "CNAME": [f"{name} 300 IN CNAME d1234abcd.cloudfront.net."] if name.startswith("www.") else [],
            }
            for line in zone.get(qtype, []):
                for rr in RR.fromZone(line):
                    reply.add_answer(rr)
            return reply

    udp = DNSServer(Wildcard(), address="127.0.0.1", port=0)
    port = udp.server.server_address[1]
    tcp = DNSServer(Wildcard(), address="127.0.0.1", port=port, tcp=True)
    for s in (udp, tcp):
        s.server.logger.log_recv = s.server.logger.log_send = lambda *a: None
        s.server.logger.log_request = s.server.logger.log_reply = lambda *a: None
        s.server.logger.log_data = s.server.logger.log_error = lambda *a: None
        s.start_thread()
    print(f"127.0.0.1:{port}", flush=True)
    while True:
        time.sleep(3600)


def start_dns() -> tuple[subprocess.Popen[str], str]:
    """The DNS server in a child process, and its HOST:PORT."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve-dns"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The server in a child process, and its URL."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


# ----------------------------------------------------------------------------- one crawl


def child(args: argparse.Namespace) -> None:
    """Run one crawl in this process and print its figures as JSON."""
    from detector.crawl.runner import CrawlOptions, run_crawl

    report = run_crawl(
        CrawlOptions(
            inputs=(args.input,),
            db=args.db,
            proxy=args.proxy,
            detect=not args.no_detect,
            workers=args.workers,
            concurrency=args.concurrency,
            per_site=2,
            pages=2,
            ignore_robots=True,
            timeout=30,
            retries=0,
            dns=bool(args.resolver),
            resolver=args.resolver or None,
            extra={"DETECTOR_SCHEMES": ["http"], "LOGSTATS_INTERVAL": 0},
        )
    )
    stats = report.stats
    finish = stats["finish_time"].timestamp()
    ready = stats.get("detector/ready_time") or stats["start_time"].timestamp()
    pages = int(stats.get("detector/pages_fetched", 0))
    print(
        json.dumps(
            {
                "domains": int(stats.get("detector/sites_done", 0)),
                "failed": int(stats.get("detector/sites_failed", 0)),
                "pages": pages,
                "requests": int(stats.get("downloader/request_count", 0)),
                "dns_ok": int(stats.get("detector/dns/ok", 0)),
                "dns": {k.removeprefix("detector/dns/"): v for k, v in stats.items() if k.startswith("detector/dns/")},
                "seconds": round(finish - ready, 2),
                "pages_per_second": round(pages / max(1e-9, finish - ready), 1),
                "crawler_cpu_seconds": round(resource.getrusage(resource.RUSAGE_SELF).ru_utime
                                             + resource.getrusage(resource.RUSAGE_SELF).ru_stime, 1),
                "worker_cpu_seconds": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                                            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime, 1),
                "crawler_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            }
        ),
        flush=True,
    )


def crawl(input_file: Path, db: Path, proxy: str, *, detect: bool, workers: int, concurrency: int,
          resolver: str = "") -> dict[str, float]:
    """Run a crawl child process and return its figures (DNS on when a resolver is given)."""
    cmd = [sys.executable, __file__, "--child", "--input", str(input_file), "--db", str(db), "--proxy", proxy,
           "--workers", str(workers), "--concurrency", str(concurrency)]
    if not detect:
        cmd.append("--no-detect")
    if resolver:
        cmd += ["--resolver", resolver]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- 1M lines


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_of(pid: int) -> list[int]:
    """Direct child processes (the engine workers)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def read_all(path: Path) -> dict[str, float]:
    """Read and de-duplicate a whole list in a child process: time and peak RSS of that alone."""
    code = (
        "import resource, sys, time\n"
        "from detector.inputs import DomainEntry, read_domains\n"
        "t = time.monotonic()\n"
        "n = sum(isinstance(e, DomainEntry) for e in read_domains([sys.argv[1]]))\n"
        "print(n, round(time.monotonic() - t, 1), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    return {"domains": int(out[0]), "seconds": float(out[1]), "peak_rss_mb": float(out[2])}


def million(tmp: Path, proxy: str, lines: int, seconds: float, workers: int) -> dict[str, float]:
    """Start a crawl of a ``lines``-line list, watch its memory for ``seconds``, stop it."""
    big = tmp / "million.txt"
    with big.open("w") as f:
        for i in range(lines):
            f.write(f"m{i}.test\n")
    db = tmp / "million.db"
    cmd = [sys.executable, "-m", "detector", "crawl", str(big), "--db", str(db), "--proxy", proxy, "--no-dns",
           "--workers", str(workers), "--ignore-robots", "--retries", "0", "--json", "--no-progress"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak_crawler = peak_total = 0.0
    while time.monotonic() - started < seconds and proc.poll() is None:
        crawler = rss_mb(proc.pid)
        total = crawler + sum(rss_mb(c) for c in children_of(proc.pid))
        peak_crawler, peak_total = max(peak_crawler, crawler), max(peak_total, total)
        time.sleep(0.25)
    proc.send_signal(signal.SIGINT)  # Scrapy's graceful stop: in-flight sites finish and are stored
    out, _err = proc.communicate(timeout=120)
    summary = json.loads(out) if out.strip().startswith("{") else {}
    return {
        "input_lines": lines,
        "input_mb": round(big.stat().st_size / 1e6, 1),
        "watched_seconds": round(time.monotonic() - started, 1),
        "domains_stored": summary.get("domains_ok", 0) + summary.get("domains_failed", 0),
        "crawler_peak_rss_mb": round(peak_crawler, 1),
        "crawler_plus_workers_peak_rss_mb": round(peak_total, 1),
        "exit_code": proc.returncode,
        "read_all": read_all(big),
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
    """Parse arguments; run the server, a child crawl, or the whole benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=2000, help="sites per crawl (default 2000)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="alternating off/on rounds (default 2)")
    ap.add_argument("--workers", type=int, default=-1, help="engine processes (default: one per CPU)")
    ap.add_argument("--million-lines", type=int, default=1_000_000)
    ap.add_argument("--million-seconds", type=float, default=30.0, help="how long to watch the 1M-line crawl")
    ap.add_argument("--compare", choices=("detect", "dns"), default="detect",
                    help="what the alternating crawls differ in: detection off/on (default) or --dns off/on")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-dns", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--resolver", default="", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--proxy", help=argparse.SUPPRESS)
    ap.add_argument("--no-detect", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    if args.serve_dns:
        serve_dns()
        return
    if args.child:
        child(args)
        return

    server, url = start_server()
    dns_server, resolver = start_dns() if args.compare == "dns" else (None, "")
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            # Off and on alternate, so a machine busy with something else slows both alike.
            rates: dict[str, list[float]] = {"off": [], "on": []}
            cpu: dict[str, list[float]] = {"off": [], "on": []}  # crawler CPU per site: load-independent
            what = "dns" if args.compare == "dns" else "detection"
            for round_no in range(1, args.rounds + 1):
                for label, on in (("off", False), ("on", True)):
                    listing = tmp / f"{label}{round_no}.txt"
                    listing.write_text("".join(f"{label}{round_no}x{i}.test\n" for i in range(args.sites)))
                    dns_on = args.compare == "dns" and on
                    r = crawl(listing, tmp / f"{label}{round_no}.db", url, detect=on or args.compare == "dns",
                              workers=args.workers, concurrency=args.concurrency, resolver=resolver if dns_on else "")
                    rates[label].append(r["pages_per_second"])
                    cpu[label].append(r["crawler_cpu_seconds"] / max(1, r["domains"]))
                    dns_note = ""
                    if dns_on:
                        others = {k: v for k, v in r["dns"].items() if k != "ok"}  # type: ignore[attr-defined]
                        dns_note = f", DNS answered for {r['dns_ok']:,}" + (f" (not: {others})" if others else "")
                    print(f"round {round_no}, {what} {label:>3}: {r['domains']:,} sites ({r['failed']} failed{dns_note}), "
                          f"{r['pages']:,} pages in {r['seconds']:.1f} s = {r['pages_per_second']:.1f} pages/s, "
                          f"crawler CPU {1000 * r['crawler_cpu_seconds'] / max(1, r['domains']):.1f} ms/site; "
                          f"peak RSS crawler {r['crawler_peak_rss_mb']:.0f} MB, "
                          f"engine worker {r['worker_peak_rss_mb']:.0f} MB", flush=True)
            off, on = max(rates["off"]), max(rates["on"])
            goal = "goal >= 0.90: at most 10% slower" if args.compare == "dns" else "goal >= 0.60"
            print(f"best of {args.rounds}, {what}: off {off:.1f} pages/s, on {on:.1f} pages/s, ratio on/off "
                  f"{on / off:.2f} ({goal}) on {os.cpu_count()} CPUs", flush=True)
            cpu_off, cpu_on = min(cpu["off"]), min(cpu["on"])
            print(f"crawler CPU per site (least of {args.rounds}): off {1000 * cpu_off:.1f} ms, on {1000 * cpu_on:.1f} ms "
                  f"(+{100 * (cpu_on / max(1e-9, cpu_off) - 1):.0f}%); load average {os.getloadavg()[0]:.1f}", flush=True)
            if args.million_lines:
                m = million(tmp, url, args.million_lines, args.million_seconds, args.workers)
                print(f"{m['input_lines']:,}-line input ({m['input_mb']} MB) accepted; crawled for "
                      f"{m['watched_seconds']} s, {m['domains_stored']:,} domains stored, then stopped with "
                      f"Ctrl-C (exit {m['exit_code']}); peak RSS crawler {m['crawler_peak_rss_mb']:.0f} MB, "
                      f"crawler + engine workers {m['crawler_plus_workers_peak_rss_mb']:.0f} MB (goal < 500 MB)",
                      flush=True)
                r = m["read_all"]
                print(f"reading and de-duplicating all {r['domains']:,} domains of that list alone: "
                      f"{r['seconds']} s, peak RSS {r['peak_rss_mb']:.0f} MB (the most the input side "
                      f"can ever hold)", flush=True)
    finally:
        server.terminate()
        server.wait()
        if dns_server is not None:
            dns_server.terminate()
            dns_server.wait()


if __name__ == "__main__":
    main()
