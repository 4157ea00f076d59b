"""A real Scrapy pipeline for tests: writes each SiteItem's page outcomes to a JSONL file.

Crawls in tests/test_crawl_outcomes.py add it after DetectStorePipeline (``TEST_DUMP`` names the
file), so they can read how every requested page ended, not only what the scans table keeps.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from detector.crawl.items import SiteItem


class DumpOutcomesPipeline:
    """Append one JSON object per SiteItem: domain, status, error, pages and results."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Any) -> DumpOutcomesPipeline:
        return cls(crawler.settings.get("TEST_DUMP"))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SiteItem):
            record = {
                "domain": item.domain,
                "status": item.scan.status,
                "error_kind": item.scan.error_kind,
                "pages": [p.url for p in item.pages],
                "pages_failed": item.scan.pages_failed,
                "pages_offsite": item.scan.pages_offsite,
                "results": [dataclasses.asdict(r) for r in item.results],
            }
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        return item


def memory_kb() -> tuple[int, int]:
    """(peak RSS, current RSS) of this process in KB, from /proc (Linux); (0, 0) elsewhere."""
    peak = now = 0
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    now = int(line.split()[1])
    except OSError:
        pass
    return peak, now


class MeasurePipeline:
    """Append, per SiteItem, when it ended and the process's peak and current memory
    (``TEST_MEASURE`` names the file; the fault matrix crawls its cases one at a time)."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Any) -> MeasurePipeline:
        return cls(crawler.settings.get("TEST_MEASURE"))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SiteItem):
            import time

            peak, now = memory_kb()
            record = {"domain": item.domain, "at": time.time(), "peak_kb": peak, "rss_kb": now}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        return item
