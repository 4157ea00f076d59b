"""Test servers: the virtual-host proxy serving tests/sites/ (HTTPS by CONNECT with a
trustme certificate), and a helper that runs ``detector`` in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.demo.vhosts import Site, VirtualHostProxy, load_sites

ROOT = Path(__file__).resolve().parent.parent
SITES = Path(__file__).resolve().parent / "sites"
CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl.gz"


def tls_context(hosts: Sequence[str], issuer: str | None = None) -> ssl.SSLContext:
    """A server context with a certificate for the hosts, issued by a throwaway trustme CA
    (whose organisation is ``issuer`` when given, as a certIssuer rule would see it)."""
    import trustme

    ca = trustme.CA(organization_name=issuer) if issuer else trustme.CA()
    cert = ca.issue_cert(*hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def start_proxy(extra: Mapping[str, Site] | None = None, *, issuer: str | None = None) -> VirtualHostProxy:
    """Serve tests/sites/ plus ``extra`` sites through a local proxy (http and https)."""
    sites = {**load_sites(SITES), **(extra or {})}
    hosts = sorted({h for s in sites for h in (s, "*." + s)})
    return VirtualHostProxy(sites, ssl_context=tls_context(hosts, issuer)).start()


@dataclass(frozen=True)
class Run:
    """A finished subprocess: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self) -> object:
        """stdout parsed as JSON."""
        return json.loads(self.out)


def run_detector(args: Sequence[str], *, cwd: Path | None = None, stdin: str | None = None, timeout: float = 120) -> Run:
    """``python -m detector ARGS`` in a subprocess (the Twisted reactor starts once per process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "detector", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of a query on a database file, as dicts (read without our code)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()
