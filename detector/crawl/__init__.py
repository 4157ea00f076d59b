"""The Scrapy project: fetch each domain's pages and hand them to the engine.

Modules: ``spider`` (the ``domains`` spider and its page outcomes), ``middlewares`` (proxy,
cookies, failure classes), ``pipelines`` (detection and storage), ``pool`` and ``worker``
(engine processes), ``items``, ``settings`` (what ``scrapy.cfg`` points at), ``runner``
(:func:`run`: a crawl from Python) and ``refresh`` (re-scanning stale domains).

Importing this package does not import Scrapy (the engine workers live here too); ``run``
imports it when called::

    from detector.crawl import CrawlOptions, run
    report = run(CrawlOptions(inputs=("domains.txt",), db="detector.db"))
    print(report.summary["domains_ok"], report.summary["top_technologies"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detector.crawl.runner import CrawlOptions, CrawlReport

__all__ = ["CrawlOptions", "run"]


def run(options: CrawlOptions, **kwargs: Any) -> CrawlReport:
    """Run a crawl (see :func:`detector.crawl.runner.run`)."""
    from detector.crawl.runner import run as run_crawl

    return run_crawl(options, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "CrawlOptions":
        from detector.crawl.runner import CrawlOptions

        return CrawlOptions
    raise AttributeError(name)
