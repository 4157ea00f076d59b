"""The fingerprint engine: pages in, detections with evidence out.

No Scrapy, no SQLite, no click: a Python user can detect a page with nothing else::

    from detector.engine import Engine, Page
    engine = Engine.from_directories(None)
    for d in engine.detect(Page.from_http(url, headers=headers, body=html)):
        print(d.technology, d.version, d.confidence, d.evidence)
    verdict = engine.detect_site([page1, page2])  # a site's pages resolved at once

Modules: ``page`` (decoding, parsing), ``patterns`` (Wappalyzer pattern syntax), ``prefilter``
(one-pass literal screening), ``signatures`` (the YAML library), ``match`` (the Engine),
``site`` (a site's pages resolved at once: ``Engine.detect_site``), ``verdict`` (the site
verdict type, SiteDetection), ``importer`` (Wappalyzer-format data),
``checks`` (library self-tests), ``cases`` (case files and HAR input), ``cache`` (compiled
engines on disk), ``loader`` (script URLs built by inline code) and ``evidence`` (the default
mode's rules of evidence; ``Engine(..., mode="wappalyzer")`` reproduces the reference engine).
"""

from __future__ import annotations

from detector.engine.match import Detection, Engine, Evidence
from detector.engine.page import Page
from detector.engine.signatures import Library, Signature, load_signatures
from detector.engine.verdict import SiteDetection

__all__ = ["Detection", "Engine", "Evidence", "Library", "Page", "Signature", "SiteDetection", "load_signatures"]
