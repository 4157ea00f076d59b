"""``detector demo --serve``: the example sites stay up on a local proxy until interrupted, so the
README's examples run as written; started, used and stopped here in a real subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import ROOT, rows, run_detector


def start_serving(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "detector", "demo", "--serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # blocks until the proxy is bound and announced
    assert first.startswith("--proxy http://127.0.0.1:"), (first, proc.stderr.read() if proc.poll() else "")
    return proc, first.split()[1]


def test_demo_serve_keeps_the_sites_up_until_sigint(tmp_path: Path) -> None:
    proc, proxy = start_serving()
    try:
        accounts = tmp_path / "accounts.csv"
        accounts.write_text("Company,Website\nAcme Outdoor,https://www.acme-outdoor.test/\n"
                            "Gone Bankrupt,gone-bankrupt.test\n", encoding="utf-8")
        db = tmp_path / "detector.db"
        # As README's walk-through writes it, with the printed proxy.
        crawl = run_detector(["crawl", str(accounts), "--db", str(db), "--proxy", proxy, "--no-dns", "--workers", "0",
                              "--timeout", "5", "--retries", "0"])
        assert crawl.code == 0, crawl.err
        assert proc.poll() is None  # still serving after the crawl
        found = {(r["domain"], r["status"], r["error_kind"]) for r in rows(db, "select * from scans")}
        assert found == {("acme-outdoor.test", "ok", None), ("gone-bankrupt.test", "error", "dns")}
        assert ("acme-outdoor.test", "Shopify") in {
            (r["domain"], r["technology"]) for r in rows(db, "select domain, technology from detections")}
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith("Serving 12 example sites on " + proxy + " until interrupted (Ctrl-C)")
    assert err.splitlines()[-1].startswith("Stopped (SIGINT); served ")
    assert out == ""  # everything after the --proxy line goes to stderr
    with socket.socket() as s:  # the port is free again (TIME_WAIT aside, as servers bind it)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(proxy.rsplit(":", 1)[1])))


def test_demo_serve_on_a_given_port_and_sigterm(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, proxy = start_serving("--port", str(port))
    assert proxy == f"http://127.0.0.1:{port}"
    try:
        # The port is in use now: a second server says so in one line, exit 1.
        second = run_detector(["demo", "--serve", "--port", str(port)], timeout=60)
        assert second.code == 1
        assert second.err == (f"Error: cannot serve the example sites on 127.0.0.1:{port} (Address already in use); "
                              "pick another --port, or 0 for any free one\n")
    finally:
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.splitlines()[-1].startswith("Stopped (SIGTERM)")
