"""The SSRF guard: no connection to a private, loopback or metadata address, by redirect or by
DNS answer, counted where it would arrive; ``--allow-private`` opens it.

Crawls run ``detector`` in a subprocess: through the fault server as proxy (redirects to IP
literals and ``localhost`` must be refused before the proxy is asked), and without a proxy
with static answers (``DETECTOR_RESOLVE``) that point a public-looking name at a loopback
server (the check after resolution must refuse it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.crawl.guard import refusal
from tests.fault_cases import CRAWL
from tests.faults import Fault, FaultServer, Request, response, static
from tests.servers import ROOT, rows, run_detector, tls_context

PAGE = b'<!DOCTYPE html><html><head><meta name="generator" content="Hugo 0.120.0"></head><body>hi</body></html>'
SECRET = b'<html><body>{"AccessKeyId": "ASIA-secret"}</body></html>'


def redirect(location: str) -> Fault:
    return Fault(static(response(302, headers=(("Location", location),))))


def private_hosts(port: int) -> dict[str, str]:
    """Site -> where its homepage redirects."""
    return {
        "metadata-hop.test": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "loopback-hop.test": f"http://127.0.0.1:{port}/admin",
        "lan-hop.test": "http://10.0.0.1/",
        "mapped-hop.test": "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "v6-hop.test": "http://[fd00:ec2::254]/latest/meta-data/",
        "localhost-hop.test": f"http://localhost:{port}/",
        "cgnat-hop.test": "http://100.64.0.7/",
    }


#: Where each redirect would arrive at the proxy (host as the proxy sees it).
TARGETS = {"169.254.169.254", "127.0.0.1", "10.0.0.1", "::ffff:169.254.169.254", "fd00:ec2::254", "localhost",
           "100.64.0.7"}


async def _page_with_hop(request: Request, reader: Any, writer: Any) -> None:
    if request.path == "/pricing":
        writer.write(response(302, headers=(("Location", "http://192.168.1.1/pricing"),)))
    else:
        writer.write(response(200, PAGE.replace(b"hi", b'<a href="/pricing">Pricing</a>')))
    await writer.drain()


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    srv = FaultServer({}).start()
    faults: dict[str, Fault] = {host: redirect(to) for host, to in private_hosts(srv.port).items()}
    faults["page-hop.test"] = Fault(_page_with_hop)
    for target in TARGETS:  # served when --allow-private lets the request through
        faults[target] = Fault(static(response(200, SECRET)))
    faults["192.168.1.1"] = Fault(static(response(200, SECRET)))
    srv.faults = faults
    srv.tls = tls_context(sorted(h for h in faults if h.endswith(".test")))
    yield srv
    srv.stop()


def crawl(server: FaultServer, tmp: Path, *extra: str) -> list[dict[str, Any]]:
    listing = tmp / "domains.txt"
    listing.write_text("\n".join([*private_hosts(server.port), "page-hop.test"]) + "\n", encoding="utf-8")
    db = tmp / "ssrf.db"
    run = run_detector(["crawl", str(listing), "--db", str(db), "--proxy", server.url, "--no-dns", "--workers", "0",
                        "--retries", "0", "--timeout", "3", "--signatures", str(ROOT / "tests" / "signatures"),
                        "--json", *extra])
    assert run.code == 0, run.err
    return rows(db, "select domain, status, error_kind, error_message, final_url, pages, pages_failed from scans")


def test_redirects_to_private_addresses_are_refused_before_the_proxy(server: FaultServer, tmp_path: Path) -> None:
    server.log.clear()
    scans = {s["domain"]: s for s in crawl(server, tmp_path)}
    for host, location in private_hosts(server.port).items():
        scan = scans[host]
        assert (scan["status"], scan["error_kind"]) == ("error", "blocked_address"), scan
        address = location.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[0] if "[" not in location else \
            location.split("[", 1)[1].split("]", 1)[0]
        assert address in scan["error_message"] and "--allow-private" in scan["error_message"], scan
    # The extra page redirected to 192.168.1.1 is refused; the homepage still counts.
    page = scans["page-hop.test"]
    assert (page["status"], page["pages"], page["pages_failed"]) == ("ok", 1, 0)
    asked = {r.host for r in server.log}
    assert not asked & (TARGETS | {"192.168.1.1"}), asked  # counted at the proxy: nothing asked
    assert server.requests("metadata-hop.test")  # the sites themselves were crawled


def test_allow_private_opens_it(server: FaultServer, tmp_path: Path) -> None:
    server.log.clear()
    scans = {s["domain"]: s for s in crawl(server, tmp_path, "--allow-private")}
    assert scans["metadata-hop.test"]["status"] == "ok"
    assert scans["metadata-hop.test"]["final_url"].startswith("http://169.254.169.254/latest/meta-data/")
    asked = {r.host for r in server.log}
    assert TARGETS | {"192.168.1.1"} <= asked


# ------------------------------------------------------------------ by DNS answer, no proxy

@pytest.fixture(scope="module")
def port80() -> Iterator[tuple[str, FaultServer]]:
    """A server on port 80 of a loopback address of its own (127.x: root may bind port 80)."""
    address = "127.14.14.14"
    probe = socket.socket()
    try:
        probe.bind((address, 80))
    except OSError as exc:
        pytest.skip(f"cannot listen on {address}:80 ({exc}); run as root")
    finally:
        probe.close()
    srv = FaultServer({"intranet.example.org": Fault(static(response(200, SECRET)))}, port=80, host=address).start()
    yield address, srv
    srv.stop()


def resolve_crawl(tmp: Path, address: str, allow_private: bool) -> dict[str, Any]:
    listing = tmp / "domains.txt"
    listing.write_text("intranet.example.org\n", encoding="utf-8")
    db = tmp / f"dns-{allow_private}.db"
    opts = {"inputs": [str(listing)], "db": str(db), "workers": 0, "retries": 0, "timeout": 3, "pages": 0,
            "detect": False, "dns": False, "allow_private": allow_private, "keep_subdomains": True,
            "extra": {"DETECTOR_RESOLVE": {"intranet.example.org": address}}}
    proc = subprocess.run([sys.executable, "-c", CRAWL, json.dumps(opts)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    (scan,) = rows(db, "select status, error_kind, error_message, final_url from scans")
    return scan


def test_dns_answer_to_a_private_address_is_refused(port80: tuple[str, FaultServer], tmp_path: Path) -> None:
    address, srv = port80
    before = srv.connections
    scan = resolve_crawl(tmp_path, address, allow_private=False)
    assert scan["error_kind"] == "blocked_address", scan
    assert scan["error_message"] == (f"intranet.example.org resolves to {address} (loopback); "
                                     "refused (use --allow-private to crawl it)")
    assert srv.connections == before  # counted at the server: no connection at all

    scan = resolve_crawl(tmp_path, address, allow_private=True)
    assert (scan["status"], scan["final_url"]) == ("ok", "http://intranet.example.org/"), scan
    assert srv.connections > before and srv.requests("intranet.example.org")


def test_reserved_names_never_reach_a_resolver(tmp_path: Path) -> None:
    """Without a proxy, shop.test fails as dns at once: no lookup (the egress guard would see it)."""
    listing = tmp_path / "domains.txt"
    listing.write_text("shop.test\ncorp.invalid\nwww.example\n", encoding="utf-8")
    db = tmp_path / "r.db"
    run = run_detector(["crawl", str(listing), "--db", str(db), "--no-detect", "--retries", "0", "--json"])
    assert run.code == 0, run.err
    scans = rows(db, "select domain, error_kind, error_message from scans order by domain")
    assert [(s["domain"], s["error_kind"]) for s in scans] == [("corp.invalid", "dns"), ("shop.test", "dns"),
                                                                     ("www.example", "dns")]
    assert all("reserved name" in s["error_message"] and "not looked up" in s["error_message"] for s in scans)


def test_refusal_messages() -> None:
    assert refusal("169.254.169.254") == "169.254.169.254 is a metadata service address"
    assert refusal("a.example.org", "::ffff:10.1.2.3") == "a.example.org resolves to ::ffff:10.1.2.3 (private network)"
    assert refusal("a.example.org", "10.1.2.3", allow_private=True) is None
