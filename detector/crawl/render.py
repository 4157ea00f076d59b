"""The rendered tier: Debian's Chromium, driven by Playwright, reads what only a browser sees.

One :class:`Renderer` per crawl holds one browser.  Each page is read in a tab of its own
browser context; a context whose page was read cleanly is reused for the next site, up to
``sites_per_context`` sites (16), with its cookies and permissions cleared and its tab left on
``about:blank`` in between: opening a tab costs Chromium about a CPU-second, several times
what reading a typical page does, and storage is per origin, so no site reads what another
left.  A page that timed out, crashed or failed closes its context.  Playwright is driven
directly on the crawl's asyncio event loop rather than through
scrapy-playwright: a scrapy-playwright request takes one of the crawl's download slots for
the whole render (seconds), so renders would starve static fetching; here the tier has its own
budget (``concurrency``, default 4) and its own queue, and static fetching never waits for it.
The per-page timeout counts from when the page gets one of those slots, not from when it was
queued.

Per page: images, media, fonts, stylesheets and subframe documents are not fetched (scripts,
XHR and fetch always are), the
page is read at ``domcontentloaded`` plus a settle wait (``load`` waits on slow third
parties), then one ``page.evaluate`` (:data:`detector.engine.browser.PROBE_SCRIPT`) reads
every ``js`` path of the library, the ``dom`` rule properties and the rendered DOM.  The hosts
of the page's XHR and fetch requests are kept for the ``xhr`` rules.  Dialogs are dismissed,
windows the page opens are closed, and a page that does not finish within ``timeout`` (a
page that never settles, an endless loop, a huge allocation) is closed and recorded as such.
A browser that dies is started again for the next page.

Network policy, the same as static fetching's: with ``proxy`` every browser request goes
through it (loopback included, and Chromium resolves no name itself); requests to addresses
that :func:`detector.netpolicy.blocked_address_reason` refuses (private, loopback, metadata...)
are refused unless ``allow_private``; without a proxy, reserved names (``.test``...) never
reach the system resolver.

Chromium leaves crash-reporter processes behind whose parent exits; where PID 1 does not reap
orphans, they stay as zombies.  The crawler process makes itself their "child subreaper"
(Linux ``prctl``) and reaps the browser's orphans, so none is left after the crawl.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from detector.crawl.settings import DETECTOR_RENDER_BUDGET
from detector.engine.browser import PROBE_SCRIPT
from detector.errors import DetectorError
from detector.netpolicy import is_ip_literal, is_localhost, is_reserved_name, refusal

log = logging.getLogger(__name__)

RENDER_MODES = ("off", "auto", "on")
#: Where Debian's ``chromium`` package puts the browser (``DETECTOR_CHROMIUM`` overrides).
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_HINT = "install Debian's chromium (apt-get install chromium) and Playwright (pip install 'detector[render]')"
#: Resource types a page is not allowed to fetch: nothing a rule reads, most of the bytes and
#: of the browser's work (stylesheets too: no rule reads computed styles).  Documents of
#: subframes (ads, embeds) are not loaded either: rules read the top window.
BLOCKED_TYPES = frozenset({"image", "media", "font", "texttrack", "manifest", "stylesheet"})
#: Chromium switches: no network use of its own (updates, safe browsing, metrics...), a heap
#: cap per page so a huge allocation crashes that page instead of the machine.
CHROMIUM_ARGS = (
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-domain-reliability", "--disable-sync", "--disable-extensions", "--no-first-run",
    "--no-default-browser-check", "--disable-client-side-phishing-detection", "--no-pings",
    "--disable-breakpad", "--disable-crash-reporter", "--disable-dev-shm-usage", "--disable-gpu",
    "--mute-audio", "--metrics-recording-only", "--js-flags=--max-old-space-size=512",
    # Subframe documents are never loaded, so isolating sites in processes buys nothing and
    # costs a renderer process per site (about 12% of the CPU on the dev corpus); a reused tab
    # keeps no page in the back-forward cache.
    "--disable-site-isolation-trials", "--renderer-process-limit=8",
    # Images are never requested (rather than each request stopped by the route handler).
    "--blink-settings=imagesEnabled=false",
    ("--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
     "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,DnsOverHttps,"
     "IsolateOrigins,site-per-process,BackForwardCache"),
)
_PR_SET_CHILD_SUBREAPER = 36
#: Seconds a page has to be read after its timeout to load and settle: a slow page is still
#: read as far as it got; one whose script never yields (an endless loop) is closed then.
READ_SECONDS = 5.0


class RenderError(DetectorError):
    """The rendered tier cannot run (no Chromium, no Playwright)."""


def find_chromium() -> str | None:
    """The Chromium executable to drive, or None when none is installed."""
    env = os.environ.get("DETECTOR_CHROMIUM")
    candidates = (env,) if env else CHROMIUM_PATHS
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why the rendered tier cannot run here, or None when it can.

    Playwright is looked up, not imported (a third of a CPU-second, paid at the first render
    only: an ``auto`` crawl may render nothing)."""
    try:
        found = importlib.util.find_spec("playwright.async_api") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"Playwright is not installed; {INSTALL_HINT}"
    if find_chromium() is None:
        where = os.environ.get("DETECTOR_CHROMIUM") or ", ".join(CHROMIUM_PATHS)
        return f"Chromium was not found ({where}); {INSTALL_HINT}"
    return None


@dataclass(slots=True)
class Snapshot:
    """What the browser saw on one page, and how rendering it went.

    ``outcome``: ``rendered``; ``timeout`` (not finished within the timeout: what was read by
    then, if anything, is kept); ``crashed`` (the page's renderer died: a huge allocation);
    ``refused`` (the network policy forbids the page itself); ``failed`` (anything else).
    """

    url: str
    outcome: str = "failed"
    message: str = ""
    final_url: str = ""
    status: int | None = None
    html: str = ""
    js: dict[str, str] = field(default_factory=dict)
    dom_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    xhr: list[str] = field(default_factory=list)
    dialogs: int = 0
    popups: int = 0
    blocked: int = 0  # requests not made: images, media, fonts
    refused: list[str] = field(default_factory=list)  # requests the network policy refused
    seconds: float = 0.0

    @property
    def read(self) -> bool:
        """True when the page was read (its DOM or js values are there)."""
        return bool(self.html or self.js)


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """How the tier renders: budget, timing, network policy."""

    concurrency: int = 4
    timeout: float = 10.0
    settle: float = 1.0
    proxy: str | None = None
    allow_private: bool = False
    user_agent: str | None = None
    max_html: int = 5 * 1024 * 1024
    #: Sites one browser context (and its tab) serves before it is replaced; 1: a fresh
    #: context per site.  Opening a tab costs Chromium about 1 CPU-second, far more than
    #: reading a page in it, so a tab that read its page cleanly moves on to the next site
    #: (its cookies cleared; storage is per origin, so no site reads another's).
    sites_per_context: int = 16
    #: Seconds a render waits for a used tab to go idle before it opens a new context (0:
    #: never waits; each slot gets its own tab at once).
    grow_after: float = 2.0


@dataclass(slots=True)
class _Tab:
    """A browser context with its one tab, reused for up to ``sites_per_context`` sites."""

    browser: Any
    context: Any
    page: Any = None
    snap: Snapshot | None = None  # the page being read: the route and dialog handlers count into it
    sites: int = 0


class Renderer:
    """One browser for a crawl; ``await render(url)`` reads one page in a tab of its own."""

    def __init__(self, chains: Sequence[str], properties: Sequence[tuple[str, str]],
                 settings: RenderSettings | None = None) -> None:
        self.settings = settings or RenderSettings()
        self.probe = {"chains": list(chains), "props": [list(p) for p in properties],
                      "maxHtml": self.settings.max_html}
        self.slots = asyncio.Semaphore(max(1, self.settings.concurrency))
        self.outcomes: Counter[str] = Counter()
        self.launches = 0
        self.contexts = 0  # browser contexts opened
        self._idle: list[_Tab] = []
        self._open: dict[int, int] = {}  # tabs open per browser (by id): idle or reading a page
        self._freed = asyncio.Event()  # a tab went idle or closed
        self._pw: Any = None
        self._browser: Any = None
        self._launching: asyncio.Lock | None = None
        self._resolved: dict[str, str | None] = {}
        self._closed = False

    # ------------------------------------------------------------------ browser
    async def start(self) -> None:
        """Start Playwright and the browser (raises RenderError when they cannot run)."""
        await self._ensure_browser()

    async def _ensure_browser(self) -> Any:
        if self._launching is None:
            self._launching = asyncio.Lock()
        async with self._launching:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            reason = unavailable_reason()
            if reason is not None:
                raise RenderError(f"cannot render pages: {reason}")
            from playwright.async_api import async_playwright

            become_subreaper()
            if self._browser is not None:
                log.warning("the browser stopped; starting it again")
                self._browser = None
                reap_orphans()
            if self._pw is None:
                self._pw = await async_playwright().start()
            try:
                self._browser = await self._pw.chromium.launch(
                    executable_path=find_chromium(), headless=True, args=self._args(),
                    handle_sigint=False, handle_sigterm=False, handle_sighup=False, timeout=60_000,
                )
            except Exception as exc:  # noqa: BLE001 - whatever Playwright raises, said plainly
                raise RenderError(f"cannot start Chromium ({find_chromium()}): {exc}") from None
            self.launches += 1
            return self._browser

    def _args(self) -> list[str]:
        args = [*CHROMIUM_ARGS, f"--detector-owner={os.getpid()}"]
        proxy = self.settings.proxy
        if proxy:
            host = urlsplit(proxy).hostname or ""
            args += [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"]
            # Every name goes to the proxy: Chromium itself resolves none (nor prefetches).
            exclude = f", EXCLUDE {host}" if host else ""  # (IP literals are mapped too, unless excluded)
            args.append(f"--host-resolver-rules=MAP * ~NOTFOUND{exclude}")
        return args

    async def close(self) -> None:
        """Close the browser and Playwright; reap what the browser left behind."""
        self._closed = True
        self._idle.clear()  # their contexts close with the browser
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), 10)
        pw, self._pw = self._pw, None
        if pw is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pw.stop(), 10)
        await asyncio.get_running_loop().run_in_executor(None, settle_orphans)

    def browser_pids(self) -> list[int]:
        """Chromium processes of this crawler (for tests and the bench: memory, restarts)."""
        return owned_browser_pids(os.getpid())

    # ------------------------------------------------------------------ one page
    async def render(self, url: str) -> Snapshot:
        """Render ``url`` in a tab of its own within the budget; never raises for the page's faults.

        The timeout counts from when the page gets a slot, not from when it was queued.
        """
        snap = Snapshot(url)
        refused = await self._refusal(url)
        if refused:
            snap.outcome, snap.message = "refused", refused
            self.outcomes[snap.outcome] += 1
            return snap
        async with self.slots:
            started = time.monotonic()
            try:
                browser = await self._ensure_browser()
            except RenderError as exc:
                snap.message = str(exc)
                self.outcomes["failed"] += 1
                return snap
            tab: _Tab | None = None
            reusable = False
            try:
                tab = await self._take_tab(browser)
                tab.snap = snap
                await asyncio.wait_for(self._visit(tab.page, snap), self.settings.timeout + READ_SECONDS)
                snap.outcome = "rendered"
                reusable = True
            except (asyncio.TimeoutError, TimeoutError):
                snap.outcome = "timeout"
                snap.message = snap.message or (f"not read within {self.settings.timeout + READ_SECONDS:g} s; "
                                                "the page was closed")
            except Exception as exc:  # noqa: BLE001 - a page's fault is that page's data
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                snap.outcome = "crashed" if "crash" in text.lower() else "failed"
                snap.message = text[:300]
            finally:
                if tab is not None:
                    tab.snap = None
                    await self._give_back(tab, browser, reusable)
                snap.seconds = round(time.monotonic() - started, 3)
        self.outcomes[snap.outcome] += 1
        return snap

    async def _take_tab(self, browser: Any) -> _Tab:
        """An idle tab of this browser, or a new context with one tab.

        Tabs are opened on demand: while this browser has tabs, a render waits up to
        ``grow_after`` seconds for one to go idle before it opens another (a new context
        costs Chromium about a CPU-second, a page in a used tab a third of that).  So sparse
        renders (``auto`` on a budget) share one tab, and a steady stream grows to one tab
        per slot within seconds.
        """
        deadline = time.monotonic() + self.settings.grow_after
        while True:
            while self._idle:
                tab = self._idle.pop()
                if tab.browser is browser:
                    return tab
            left = deadline - time.monotonic()
            if self._open.get(id(browser), 0) == 0 or left <= 0:
                break
            self._freed.clear()
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._freed.wait(), left)
        self._open[id(browser)] = self._open.get(id(browser), 0) + 1
        try:
            return await self._new_tab(browser)
        except BaseException:
            self._open[id(browser)] -= 1
            raise

    async def _new_tab(self, browser: Any) -> _Tab:
        context = await browser.new_context(
            ignore_https_errors=True, service_workers="block", accept_downloads=False,
            user_agent=self.settings.user_agent or None, viewport={"width": 1280, "height": 800},
        )
        self.contexts += 1
        tab = _Tab(browser, context)
        try:
            await context.route("**/*", lambda route, request: self._route(route, request, tab.snap))
            tab.page = await context.new_page()
        except Exception:
            await self._close_context(context)
            raise
        tab.page.on("dialog", lambda dialog: self._dialog(dialog, tab.snap))
        tab.page.on("popup", lambda popup: self._popup(popup, tab.snap))
        return tab

    async def _give_back(self, tab: _Tab, browser: Any, reusable: bool) -> None:
        """Keep a tab that read its page cleanly for the next site (cookies cleared, left on
        about:blank), at most ``sites_per_context`` sites; close any other."""
        tab.sites += 1
        if (reusable and not self._closed and tab.sites < self.settings.sites_per_context
                and browser is self._browser):
            try:
                await asyncio.wait_for(self._blank(tab), 5)
                self._idle.append(tab)
                self._freed.set()
                return
            except Exception as exc:  # noqa: BLE001 - a tab that will not go blank is closed
                log.debug("a tab would not go blank (%r); closing its context", exc)
        self._open[id(tab.browser)] = max(0, self._open.get(id(tab.browser), 0) - 1)
        self._freed.set()  # a render waiting for a tab may open one now
        await self._close_context(tab.context)

    @staticmethod
    async def _blank(tab: _Tab) -> None:
        await tab.page.goto("about:blank")
        for extra in tab.context.pages[1:]:  # windows opened late
            await extra.close()
        await tab.context.clear_cookies()
        await tab.context.clear_permissions()

    async def _visit(self, page: Any, snap: Snapshot) -> None:
        budget = max(0.5, self.settings.timeout - self.settings.settle)
        try:
            response = await page.goto(snap.url, wait_until="domcontentloaded", timeout=budget * 1000)
            if response is not None:
                snap.status = response.status
        except Exception as exc:
            if "Timeout" not in type(exc).__name__:
                raise
            # Not even domcontentloaded (a script that never loads or never ends): read what
            # is there if the page still answers; the outer timeout bounds that too.
            snap.message = f"domcontentloaded not reached within {budget:g} s"
        await asyncio.sleep(self.settings.settle)
        try:
            result = await page.evaluate(PROBE_SCRIPT, self.probe)
        except Exception as exc:
            if "context was destroyed" not in str(exc):
                raise
            # The page moved on meanwhile (a meta refresh, location = ...): read where it went,
            # if that is the same host (another site's technologies are not this site's).
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("domcontentloaded", timeout=budget * 1000)
            if _bare_host(page.url) != _bare_host(snap.url):
                raise RuntimeError(f"the page moved to {page.url[:200]} while it was read (another host); "
                                   "not read") from None
            result = await page.evaluate(PROBE_SCRIPT, self.probe)
        snap.final_url = page.url
        snap.html = str(result.get("html") or "")
        snap.js = {str(k): str(v) for k, v in (result.get("js") or {}).items()}
        snap.dom_properties = {str(s): {str(k): str(v) for k, v in props.items()}
                               for s, props in (result.get("props") or {}).items()}
        if snap.message:
            raise asyncio.TimeoutError

    async def _close_context(self, context: Any) -> None:
        try:
            await asyncio.wait_for(context.close(), 5)
        except Exception:  # noqa: BLE001 - a context that will not close: the browser goes
            log.warning("a browser context would not close; restarting the browser")
            browser, self._browser = self._browser, None
            if browser is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(browser.close(), 5)

    async def _route(self, route: Any, request: Any, snap: Snapshot | None) -> None:
        try:
            if snap is None:  # between two sites: nothing is fetched
                await route.abort("blockedbyclient")
                return
            if request.resource_type in BLOCKED_TYPES or (
                    request.resource_type == "document" and _in_subframe(request)):
                snap.blocked += 1
                await route.abort("blockedbyclient")
                return
            reason = await self._refusal(request.url)
            if reason:
                snap.refused.append(f"{request.url[:200]}: {reason}")
                await route.abort("blockedbyclient")
                return
            if request.resource_type in ("xhr", "fetch"):
                host = urlsplit(request.url).hostname
                if host and host not in snap.xhr and len(snap.xhr) < 200:
                    snap.xhr.append(host)
            await route.continue_()
        except Exception:  # noqa: BLE001 - the page went away meanwhile
            return

    @staticmethod
    def _dialog(dialog: Any, snap: Snapshot | None) -> None:
        if snap is not None:
            snap.dialogs += 1
        # "Leave page?" is answered yes, so the tab can move on to the next site.
        leave = getattr(dialog, "type", "") == "beforeunload"
        asyncio.ensure_future(_quietly(dialog.accept() if leave else dialog.dismiss()))

    @staticmethod
    def _popup(popup: Any, snap: Snapshot | None) -> None:
        if snap is not None:
            snap.popups += 1
        asyncio.ensure_future(_quietly(popup.close()))

    # ------------------------------------------------------------------ network policy
    async def _refusal(self, url: str) -> str:
        """Why the policy refuses ``url`` (empty: allowed)."""
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return ""
        if parts.scheme not in ("http", "https"):
            return f"{parts.scheme}: URLs are not fetched"
        host = (parts.hostname or "").lower()
        if not host:
            return "no host"
        if self.settings.allow_private:
            return ""
        if is_ip_literal(host):
            reason = refusal(host)
            return f"{reason} (--allow-private fetches it)" if reason else ""
        if is_localhost(host):
            return f"{host} is a loopback name (--allow-private fetches it)"
        if self.settings.proxy:
            return ""  # the proxy resolves names, as it does for static fetching
        if is_reserved_name(host):
            return f"{host} is a reserved name; it is never sent to the system resolver (use --proxy)"
        if host not in self._resolved:
            self._resolved[host] = await _resolved_refusal(host)
        return self._resolved[host] or ""


async def _resolved_refusal(host: str) -> str | None:
    """Why ``host`` must not be fetched, from what it resolves to (None: it may)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None  # the browser's own lookup fails the same way
    for info in infos:
        reason = refusal(host, str(info[4][0]))
        if reason:
            return reason
    return None


def _bare_host(url: str) -> str:
    """The host of a URL without a leading ``www.``.

    >>> _bare_host("https://www.Example.org/a"), _bare_host("http://example.org")
    ('example.org', 'example.org')
    """
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _in_subframe(request: Any) -> bool:
    try:
        return request.frame.parent_frame is not None
    except Exception:  # noqa: BLE001 - a frame being detached: not the top document either
        return True


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(Exception):
        await coro


# ---------------------------------------------------------------------- processes
def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); True on success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, str, int, float] | None:
    """(command name, state, parent pid, CPU seconds with the children it reaped) of a
    process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    name = raw[raw.find("(") + 1 : raw.rfind(")")]
    rest = raw[raw.rfind(")") + 2 :].split()
    # utime, stime, cutime, cstime
    return name, rest[0], int(rest[1]), sum(int(v) for v in rest[11:15]) / _CLOCK_TICKS


def process_table() -> dict[int, tuple[str, str, int, float]]:
    """Every process of /proc by pid, as :func:`_stat` reads it (empty without /proc)."""
    table = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and (info := _stat(int(entry))) is not None:
            table[int(entry)] = info
    return table


def _adopted(owner: int) -> list[tuple[int, str]]:
    """Browser processes whose parent is ``owner``: (pid, state)."""
    return [(pid, state) for pid, (name, state, parent, _cpu) in process_table().items()
            if parent == owner and _is_browser(name)]


def _is_browser(name: str) -> bool:
    return name.startswith(("chrom", "chrome_crashpad")) or "crashpad" in name


def reap_orphans() -> int:
    """Reap the browser zombies this process adopted as subreaper; return how many."""
    n = 0
    for pid, state in _adopted(os.getpid()):
        if state == "Z":
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
                n += 1
    return n


def settle_orphans(wait: float = 3.0) -> None:
    """After the browser closed: wait for its adopted processes to exit, kill stragglers, reap all."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        reap_orphans()
        if not _adopted(os.getpid()):
            return
        time.sleep(0.05)
    for pid, _state in _adopted(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    reap_orphans()


def owned_browser_pids(owner: int) -> list[int]:
    """Live Chromium processes started for the crawler ``owner`` (by the owner switch)."""
    marker = f"--detector-owner={owner}".encode()
    out = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        out.append(int(entry))
            except OSError:
                continue
    return out


def chromium_installed() -> bool:
    """True when a Chromium executable is there (tests skip without it)."""
    return find_chromium() is not None or shutil.which("chromium") is not None


# ---------------------------------------------------------------------- the budget
#: ``--render auto``'s default budget is DETECTOR_RENDER_BUDGET (crawl settings): the browser
#: may use at most that many times the CPU the crawl itself has used (fetching, parsing,
#: static detection, writing).  On the dev corpus a render costs Chromium about 1 CPU-second
#: and a static site 0.02, so an unbounded ``auto`` that renders 7% of the sites takes four
#: times as long as ``off``; with the budget it stays under twice.  0: no budget.
#: Browser CPU-seconds any crawl may spend per unit of its share, however short the crawl
#: (2.4 at the default 0.4: the browser's launch, a tab and a few small pages), so a short
#: list renders what the advisor names.
BUDGET_ALLOWANCE = 6.0
#: Seconds a reading of the processes' CPU is reused for (a reading walks /proc: 1.5 ms).
METER_EVERY = 0.25
#: What a render is expected to cost before it starts: browser CPU-seconds per byte of the
#: page's HTML, and at least RENDER_FLOOR a page (on the dev corpus a 850 KB page costs
#: Chromium about 4 CPU-seconds; a 60 KB one a third of a second in a used tab).
RENDER_RATE = 1.0 / 200_000
RENDER_FLOOR = 0.3
#: The scan's ``render`` value when the advisor named the site and the budget was spent.
SKIPPED = "skipped"
#: Names of the processes of the browser side: Playwright's driver and Chromium's.
_BROWSER_SIDE = ("node", "chrom", "crashpad", "playwright")


def cpu_split(root: int | None = None) -> tuple[float, float]:
    """CPU seconds used so far by ``root``'s process tree (default: this process), split into
    (the browser side: Playwright's driver, Chromium and the processes they reaped; the rest:
    ``root`` itself, its engine processes).  Read from /proc; (0, process time) without it."""
    root = os.getpid() if root is None else root
    procs = process_table()
    if root not in procs:
        return 0.0, time.process_time()
    children: dict[int, list[int]] = {}
    for pid, (_name, _state, parent, _cpu) in procs.items():
        children.setdefault(parent, []).append(pid)
    browser = rest_cpu = 0.0
    stack = [(pid, procs[pid][0].startswith(_BROWSER_SIDE)) for pid in children.get(root, [])]
    while stack:
        pid, side = stack.pop()
        if side:
            browser += procs[pid][3]
        else:
            rest_cpu += procs[pid][3]
        stack.extend((kid, side or procs[kid][0].startswith(_BROWSER_SIDE)) for kid in children.get(pid, []))
    return browser, rest_cpu + procs[root][3]


class RenderBudget:
    """How much rendering a crawl can afford: the browser's CPU stays under ``share`` times
    the crawl's own, or ``share`` times :data:`BUDGET_ALLOWANCE` when that is more (``share``
    0: no budget).
    The crawl's CPU counts from its start (loading the library too).

    What the browser has spent is measured (its launch and its contexts included); a render
    about to start is estimated from the size of the page's HTML (Chromium parses it, builds
    its DOM, runs its scripts and serialises it back): :data:`RENDER_RATE` a byte, at least
    :data:`RENDER_FLOOR`.  Renders in flight count at their estimate, so a crawl does not
    overshoot by a slot of renders.  ``meter`` returns (browser CPU, crawl CPU).
    """

    def __init__(self, share: float, meter: Callable[[], tuple[float, float]] = cpu_split,
                 allowance: float = BUDGET_ALLOWANCE, every: float = METER_EVERY) -> None:
        self.share = max(0.0, share)
        self.every = every  # seconds a reading of the meter is reused for
        self._reading: tuple[float, float, float] | None = None  # (when, browser, crawl)
        self.allowance = allowance * self.share
        self.meter = meter
        self.started = 0  # renders begun (their tokens)
        self._flying: dict[int, float] = {}  # estimated cost of each render in flight
        self._browser_base = 0.0  # CPU of browsers that have exited (a restart)
        self._browser_last = 0.0

    def browser_cpu(self) -> tuple[float, float]:
        """(browser CPU so far, crawl CPU so far), the browser's kept across restarts."""
        now = time.monotonic()
        if self._reading is not None and now - self._reading[0] < self.every:
            return self._browser_base + self._reading[1], self._reading[2]
        browser, crawl = self.meter()
        self._reading = (now, browser, crawl)
        if browser + 1e-6 < self._browser_last:  # a browser went away with its CPU
            self._browser_base += self._browser_last
        self._browser_last = browser
        return self._browser_base + browser, crawl

    @staticmethod
    def cost(size: int) -> float:
        """Estimated browser CPU-seconds of rendering a page of ``size`` bytes of HTML."""
        return max(RENDER_FLOOR, RENDER_RATE * size)

    def allows(self, size: int = 0) -> bool:
        """True when rendering one more page (``size`` bytes of HTML) fits the budget."""
        if self.share <= 0:
            return True
        browser, crawl = self.browser_cpu()
        return browser + sum(self._flying.values()) + self.cost(size) <= max(self.share * crawl, self.allowance)

    def begin(self, size: int = 0) -> int:
        """A render starts; returns its token for :meth:`end`."""
        self.started += 1
        self._flying[self.started] = self.cost(size)
        return self.started

    def end(self, token: int) -> None:
        """The render ``token`` is done (what it cost is in the browser's CPU now)."""
        self._flying.pop(token, None)


#: The order in which waiting candidates are rendered when the budget is short: what the
#: render most likely changes first (tags a container injects, an app built in the browser,
#: a technology to confirm), a version last.
_REASON_RANKS = (("tag manager", 0), ("empty #", 1), ("app shell", 1), ("confidence", 2), ("scripts name", 3),
                 ("version in js", 4))


def reason_rank(reasons: Sequence[str]) -> int:
    """The rank of a site's best reason to render (lower renders first)."""
    ranks = [rank for reason in reasons for key, rank in _REASON_RANKS if key in reason]
    return min(ranks, default=len(_REASON_RANKS))


# ---------------------------------------------------------------------- the crawl's stage
@dataclass(order=True, slots=True)
class _Waiting:
    """A site waiting for the budget; the smallest renders first."""

    again: int  # 0: the last scan skipped its render; 1: it did not
    rank: int  # of its best reason (:func:`reason_rank`)
    order: int  # of arrival
    domain: str = field(compare=False)
    size: int = field(compare=False)  # bytes of its homepage's HTML
    render: Callable[[], Any] = field(compare=False)  # makes the coroutine that renders and keeps it
    skip: Callable[[], Any] = field(compare=False)  # makes the one that keeps it static


class RenderStage:
    """The crawl's use of the tier: which sites to render (``auto``/``on``), a bounded queue of
    renders beside the pipeline (static items never wait for a render, except when ``backlog``
    renders are already waiting), the budget, and one Renderer for the crawl.

    Under ``auto`` a site the advisor names is rendered at once while the budget allows
    (:class:`RenderBudget`); otherwise it waits, at most ``backlog`` sites, and the best of
    them (:func:`reason_rank`, sites skipped by the last scan first) is rendered as the static
    crawl earns more budget.  What is still waiting when the static crawl ends, or is pushed
    out of a full queue, is kept static and recorded as ``skipped``.
    """

    def __init__(self, mode: str, settings: RenderSettings, backlog: int = 64,
                 budget: float = DETECTOR_RENDER_BUDGET) -> None:
        if mode not in RENDER_MODES:
            raise RenderError(f'unknown render mode "{mode}"; use one of {", ".join(RENDER_MODES)}')
        self.mode = mode
        self.settings = settings
        self.backlog = max(1, backlog)
        self.renderer: Renderer | None = None
        self.advisor: Any = None
        self.tasks: set[asyncio.Future[None]] = set()
        self.note = ""  # why the tier is off although asked for (auto without Chromium)
        # --render on renders every site: a budget would only make it auto by another name.
        self.budget = RenderBudget(budget if mode == "auto" else 0.0)
        #: Domains whose last scan skipped the render for the budget: rendered first now.
        self.first: frozenset[str] = frozenset()
        #: Sites waiting for budget.
        self.waiting: list[_Waiting] = []
        self._order = 0
        self.closing = False  # the static crawl is done: nothing more starts

    @property
    def active(self) -> bool:
        """True when pages will be rendered."""
        return self.renderer is not None

    async def open(self, library: Any) -> None:
        """Check the tier can run and build its advisor; ``on`` without Chromium raises RenderError."""
        from detector.engine.browser import RenderAdvisor, browser_probes

        reason = unavailable_reason()
        if reason is not None:
            if self.mode == "on":
                raise RenderError(f"--render on cannot run: {reason}")
            self.note = f"--render auto: pages are read statically only; {reason}"
            log.warning("%s", self.note)
            return
        self.advisor = RenderAdvisor(library)
        chains, props = browser_probes(library)
        self.renderer = Renderer(chains, props, self.settings)
        if self.mode == "on":
            await self.renderer.start()  # fail before crawling, not on the first site

    def reasons(self, html: str, found: Sequence[Any]) -> list[str]:
        """Why this homepage should be rendered (empty: it should not)."""
        if self.renderer is None:
            return []
        if self.mode == "on":
            return ["--render on"]
        from detector.engine.browser import static_technologies

        reasons: list[str] = self.advisor.reasons(html, static_technologies(found))
        return reasons

    async def offer(self, domain: str, reasons: Sequence[str], size: int, render: Callable[[], Any],
                    skip: Callable[[], Any]) -> None:
        """A site to render (``size``: bytes of its homepage's HTML): ``render()`` makes the
        coroutine that renders and keeps it, ``skip()`` the one that keeps it static."""
        self._order += 1
        entry = _Waiting(0 if domain in self.first else 1, reason_rank(reasons), self._order, domain, size, render, skip)
        if not self.waiting and self.budget.allows(size):
            await self.room()
            self._start(entry)
            return
        self.waiting.append(entry)
        if len(self.waiting) > self.backlog:
            worst = max(self.waiting)
            self.waiting.remove(worst)
            self.spawn(worst.skip())
        self.pump()

    def pump(self) -> None:
        """Start the best waiting renders the budget now affords."""
        while self.waiting and not self.closing:
            best = min(self.waiting)
            if not self.budget.allows(best.size):
                return
            self.waiting.remove(best)
            self._start(best)

    def _start(self, entry: _Waiting) -> None:
        token = self.budget.begin(entry.size)

        async def run() -> None:
            try:
                await entry.render()
            finally:
                self.budget.end(token)
                self.pump()

        self.spawn(run())

    async def room(self) -> None:
        """Wait while ``backlog`` renders are queued or running."""
        while len(self.tasks) >= self.backlog:
            await asyncio.wait(list(self.tasks), return_when=asyncio.FIRST_COMPLETED)

    def spawn(self, work: Any) -> None:
        """Run ``work`` (a coroutine) beside the pipeline."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Keep the sites still waiting static (a render started now would only add to the
        crawl's time after its static work is done), finish the renders running, close the browser."""
        self.closing = True
        for entry in sorted(self.waiting):
            self.spawn(entry.skip())
        self.waiting.clear()
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self.renderer is not None:
            await self.renderer.close()


def render_stage(settings: Any) -> RenderStage | None:
    """The stage for a crawl's Scrapy settings (None with ``DETECTOR_RENDER = "off"``).

    Reads DETECTOR_RENDER (off, auto, on), DETECTOR_RENDER_CONCURRENCY, DETECTOR_RENDER_TIMEOUT,
    DETECTOR_RENDER_SETTLE, DETECTOR_RENDER_BACKLOG, DETECTOR_RENDER_BUDGET (``auto``'s CPU
    share, :data:`DETECTOR_RENDER_BUDGET`; 0: none), DETECTOR_RENDER_SITES_PER_CONTEXT (16; 1: a
    fresh browser context per site), DETECTOR_PROXY, USER_AGENT and
    ALLOW_PRIVATE / DETECTOR_ALLOW_PRIVATE (private addresses refused unless set).
    """
    mode = str(settings.get("DETECTOR_RENDER") or "off").lower()
    if mode == "off":
        return None
    options = RenderSettings(
        concurrency=settings.getint("DETECTOR_RENDER_CONCURRENCY", 4),
        timeout=settings.getfloat("DETECTOR_RENDER_TIMEOUT", 10.0),
        settle=settings.getfloat("DETECTOR_RENDER_SETTLE", 1.0),
        proxy=settings.get("DETECTOR_PROXY") or None,
        allow_private=settings.getbool("ALLOW_PRIVATE") or settings.getbool("DETECTOR_ALLOW_PRIVATE"),
        user_agent=settings.get("USER_AGENT") or None,
        sites_per_context=max(1, settings.getint("DETECTOR_RENDER_SITES_PER_CONTEXT", 16)),
    )
    return RenderStage(mode, options, settings.getint("DETECTOR_RENDER_BACKLOG", 64),
                       budget=settings.getfloat("DETECTOR_RENDER_BUDGET", DETECTOR_RENDER_BUDGET))
