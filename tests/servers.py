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


# ---------------------------------------------------------------------------- Redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1, its data (AOF on) in ``directory``; restartable."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING (and has loaded its data)."""
        import time

        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: {(self.directory / 'redis.log').read_text()[-500:]}") from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self, sig: int = 15) -> None:
        """Stop it (SIGTERM: it writes everything down first) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None
