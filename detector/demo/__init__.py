"""``detector demo``: serve the bundled example sites on 127.0.0.1 and crawl them offline."""

from __future__ import annotations

import datetime
import signal
import ssl
import tempfile
import threading
from pathlib import Path

from detector.demo.vhosts import Site, VirtualHostProxy, load_sites

DEMO_SITES = Path(__file__).resolve().parent / "sites"


def demo_domains_file() -> Path:
    """The demo's account list (messy on purpose: URLs, case, a duplicate, bad lines)."""
    return DEMO_SITES / "domains.txt"


def demo_sites() -> dict[str, Site]:
    """The bundled example sites by host name."""
    return load_sites(DEMO_SITES)


def self_signed_context(hosts: list[str]) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate for the given hosts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "detector demo")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class DemoServer:
    """The running demo proxy: ``url`` for --proxy, ``sites`` it serves, ``stop()``."""

    def __init__(self, sites: dict[str, Site], proxy: VirtualHostProxy) -> None:
        self.sites = sites
        self.proxy = proxy

    @property
    def url(self) -> str:
        """The proxy's address."""
        return self.proxy.url

    def stop(self) -> None:
        """Stop serving."""
        self.proxy.stop()


def start_demo_server(port: int = 0) -> DemoServer:
    """Serve the demo sites (https and http) through a local proxy on 127.0.0.1 (port 0: a free one).

    Raises OSError when the port cannot be bound (taken by another program).
    """
    sites = demo_sites()
    hosts = sorted({h for s in sites for h in (s, "*." + s)})
    proxy = VirtualHostProxy(sites, ssl_context=self_signed_context(hosts), port=port).start()
    return DemoServer(sites, proxy)


def wait_until_stopped(poll: float = 0.2) -> str:
    """Block until SIGINT (Ctrl-C) or SIGTERM arrives; return its name (``"SIGINT"``).

    The previous handlers are restored afterwards.  Call it from the main thread.
    """
    stop = threading.Event()
    received: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(poll):  # a timed wait, so the handler runs promptly
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0]
