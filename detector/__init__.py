"""detector: find which technologies websites run, keep it fresh, segment accounts.

The engine is usable on its own (no Scrapy, no database)::

    from detector import Engine, Page
    engine = Engine.from_directories(None)
    for d in engine.detect(Page.from_http(url, headers=headers, body=html)):
        print(d.technology, d.version, d.confidence, d.evidence)
"""

from __future__ import annotations

from detector.engine import Detection, Engine, Evidence, Library, Page, Signature, load_signatures
from detector.errors import DetectorError, SignatureError

__all__ = [
    "Detection",
    "DetectorError",
    "Engine",
    "Evidence",
    "Library",
    "Page",
    "Signature",
    "SignatureError",
    "load_signatures",
]
__version__ = "0.1.0"
