"""Scrapy settings for ``scrapy crawl domains``; ``detector crawl`` overrides them from options.

Our own settings start ``DETECTOR_``.  Network use is only the crawl itself: the cookie
middleware is replaced by one that uses tldextract's bundled suffix list.
"""

from __future__ import annotations

import os

BOT_NAME = "detector"
SPIDER_MODULES = ["detector.crawl.spider"]
NEWSPIDER_MODULE = "detector.crawl"

USER_AGENT = "Mozilla/5.0 (compatible; detector/0.1; +https://github.com/detector/detector)"
ROBOTSTXT_OBEY = True

# Polite: few requests per site at once, many sites in parallel.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 15
RETRY_ENABLED = True
RETRY_TIMES = 1
REDIRECT_MAX_TIMES = 10
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0
DNS_TIMEOUT = 10
REACTOR_THREADPOOL_MAXSIZE = 20

# HTTP errors reach the spider's errback as data (http_4xx / http_5xx).
HTTPERROR_ALLOW_ALL = False

DOWNLOADER_MIDDLEWARES = {
    # robots.txt per origin: the https answer must not decide for http (see the middleware).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "detector.crawl.middlewares.PerOriginRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "detector.crawl.middlewares.BundledSuffixCookiesMiddleware": 700,
    "detector.crawl.middlewares.ProxyMiddleware": 740,
    # After the proxy is set, nearest the downloader: checks every request and redirect hop.
    "detector.crawl.guard.GuardMiddleware": 760,
    # Above MetaRefreshMiddleware (580): responses pass here before anything reads their text.
    "detector.crawl.middlewares.SafeEncodingMiddleware": 590,
}

# The SSRF guard: every address the crawl connects to is checked (see detector/crawl/guard.py).
TWISTED_DNS_RESOLVER = "detector.crawl.guard.GuardedResolver"

ITEM_PIPELINES = {
    "detector.crawl.dns.DnsPipeline": 200,  # DNS records and certificate issuer, before detection
    "detector.crawl.pipelines.DetectStorePipeline": 300,
}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,  # no listening port for a batch job
    "detector.crawl.pipelines.ProgressExtension": 500,
}

# Memory: the scheduler keeps few requests because start requests are produced lazily.
# Items per response are few (one SiteItem, a few requests); Scrapy starts CONCURRENT_ITEMS
# asyncio tasks per response, which at the default 100 costs more CPU than the download.
CONCURRENT_ITEMS = 4
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.DownloaderAwarePriorityQueue"
LOG_LEVEL = "INFO"

# ---------------------------------------------------------------- detector's own settings
DETECTOR_DB = "detector.db"
DETECTOR_INPUT = ""  # comma-separated files, "-" for stdin (spider argument `input`)
DETECTOR_COLUMN = ""  # CSV/TSV column with the domain ("" = auto-detect)
DETECTOR_KEEP_SUBDOMAINS = False
DETECTOR_ALLOW_IP = False
DETECTOR_PAGES = 2  # extra same-site pages per domain, besides the homepage
DETECTOR_SCHEMES = ["https", "http"]  # tried in this order for each homepage
DETECTOR_PROXY = ""  # e.g. http://proxy.corp:3128
DETECTOR_ALLOW_PRIVATE = False  # connect to private, loopback, link-local and metadata addresses too
DETECTOR_RESOLVE: dict[str, str] = {}  # static answers {name: address}, like /etc/hosts (checked by the guard)
DETECTOR_DETECT = True  # run the engine on fetched pages (off: fetch and store scans only)
DETECTOR_DETECT_WORKERS = -1  # engine processes beside the reactor; -1 = CPU count; 0 = inline
DETECTOR_SIGNATURES: list[str] = []  # signature directories; [] = the bundled library
DETECTOR_RUN_ID = ""  # "" = generated
DETECTOR_MISS_THRESHOLD = 2  # consecutive complete, successful scans without a technology before it is removed
DETECTOR_ROBOTS_CACHE = 4096  # robots.txt parsers kept (one per scheme, host and port)
DETECTOR_COMMIT_EVERY = 200  # scans per SQLite transaction (also flushed every second)
DETECTOR_WRITE_BACKLOG = 4  # batches waiting for the writer thread before items wait too
DETECTOR_PROGRESS = False  # live progress line on stderr (the CLI turns it on for a TTY)
DETECTOR_TOTAL = 0  # input line count for progress/ETA (0 = unknown)
DETECTOR_DNS = True  # look up MX, TXT, NS, SOA, _dmarc TXT and www CNAME of each domain
DETECTOR_RESOLVER = ""  # HOST[:PORT] of the DNS server; "" = the system's (never for reserved names)
# The rendered tier (detector.crawl.render): off, auto (render where a render can change the
# site's verdict: detector.engine.browser.RenderAdvisor), on (every site's landing page).  Its own budget: never one of the download slots.
# The environment variable DETECTOR_RENDER sets the default (the test suite turns it off).
DETECTOR_RENDER = os.environ.get("DETECTOR_RENDER") or "auto"
DETECTOR_RENDER_CONCURRENCY = 4  # pages rendered at once (one browser, a tab per page)
DETECTOR_RENDER_TIMEOUT = 10.0  # seconds per rendered page, everything included
DETECTOR_RENDER_BUDGET = 0.4  # auto: browser CPU at most this share of the crawl's (0: no budget)
DETECTOR_RENDER_SETTLE = 1.0  # seconds after domcontentloaded for late scripts and globals
DETECTOR_RENDER_BACKLOG = 64  # sites waiting for the browser before items wait too
DETECTOR_RENDER_SITES_PER_CONTEXT = 16  # sites a browser context serves (cookies cleared between); 1: one each
