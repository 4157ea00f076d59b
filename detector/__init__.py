"""detector: find which technologies websites run, keep it fresh, segment accounts.

The engine is usable on its own (no Scrapy, no database)::

    from detector import Engine, Page
    engine = Engine.from_directories(None)
    for d in engine.detect(Page.from_http(url, headers=headers, body=html)):
        print(d.technology, d.version, d.confidence, d.evidence)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from detector.egress import install_from_environment

# First, before anything opens a socket: a test run's DETECTOR_EGRESS=loopback covers this process.
install_from_environment()

from detector.engine import Detection, Engine, Evidence, Library, Page, Signature, load_signatures
from detector.errors import DetectorError, SignatureError

if TYPE_CHECKING:
    from detector.store.store import Store

__all__ = [
    "Detection",
    "DetectorError",
    "Engine",
    "Evidence",
    "Library",
    "Page",
    "Signature",
    "SignatureError",
    "Store",
    "load_signatures",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The Store is imported when asked for, so `import detector.engine` stays free of SQLite.
    if name == "Store":
        from detector.store.store import Store

        return Store
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
