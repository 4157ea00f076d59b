"""``detector demo``: serve the bundled example sites on 127.0.0.1 and crawl them offline."""

from __future__ import annotations

import datetime
import ssl
import tempfile
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


def start_demo_server() -> DemoServer:
    """Serve the demo sites (https and http) through a local proxy on a free port."""
    sites = demo_sites()
    hosts = sorted({h for s in sites for h in (s, "*." + s)})
    proxy = VirtualHostProxy(sites, ssl_context=self_signed_context(hosts)).start()
    return DemoServer(sites, proxy)
