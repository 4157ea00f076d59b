"""A time budget per page for patterns that run on Python's backtracking ``re``.

RE2 and Hyperscan match in linear time; the few patterns they cannot run (lookaround, back
references) run on ``re``, where one user pattern such as ``(a+)+!(?=x)`` can take minutes
on one page.  Each such pattern may spend :data:`BUDGET` ``.seconds`` of CPU time per page
(the engine calls :func:`new_page`; CPU time, as ``signatures check`` measures, so a busy
machine does not switch patterns off); past that it is stopped (in the main thread, by
``SIGVTALRM``: ``re`` checks for signals while it backtracks) or, elsewhere, noticed when it
returns, and switched off for the rest of the process.  :func:`take_switched_off` hands each switched-off pattern
out once, so the crawl reports it once, with its file.

``DETECTOR_PATTERN_BUDGET`` (seconds, default 0.5; 0 = no budget) sets it for a process.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class _Overrun(Exception):
    """Raised in the matching thread by the alarm: the pattern's time on this page is up."""


@dataclass
class Budget:
    """Seconds a Python-``re`` pattern may spend on one page, and the page being matched."""

    seconds: float
    page: int = 0
    switched_off: list[Any] = field(default_factory=list)


def _default_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("DETECTOR_PATTERN_BUDGET", "0.5")))
    except ValueError:
        return 0.5


BUDGET = Budget(_default_seconds())
_armed = threading.local()
_handler_installed = False


def new_page() -> None:
    """Start a new page: every pattern's time on it starts at zero."""
    BUDGET.page += 1


def _on_alarm(signum: int, frame: Any) -> None:
    if getattr(_armed, "on", False):
        _armed.on = False
        raise _Overrun


def _can_interrupt() -> bool:
    global _handler_installed
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    if not _handler_installed:
        current = signal.getsignal(signal.SIGVTALRM)
        if current not in (signal.SIG_DFL, signal.SIG_IGN, None, _on_alarm):
            return False  # the program uses SIGVTALRM itself: measure only
        signal.signal(signal.SIGVTALRM, _on_alarm)
        _handler_installed = True
    return True


def search(owner: Any, regex: re.Pattern[str], value: str) -> re.Match[str] | None:
    """``regex.search(value)`` within what is left of ``owner``'s budget on this page.

    ``owner`` (a Pattern) carries ``spent``, ``page`` and ``switched_off``; an overrun returns
    None (no match) and switches it off.
    """
    seconds = BUDGET.seconds
    if seconds <= 0:
        return regex.search(value)
    if owner.page != BUDGET.page:
        owner.page, owner.spent = BUDGET.page, 0.0
    left = seconds - owner.spent
    start = time.thread_time()
    found: re.Match[str] | None = None
    overrun = False
    if _can_interrupt():
        try:
            _armed.on = True
            signal.setitimer(signal.ITIMER_VIRTUAL, max(left, 0.001))
            found = regex.search(value)
        except _Overrun:
            overrun = True
        finally:
            _armed.on = False
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    else:
        found = regex.search(value)  # cannot be stopped here: measured, switched off after
    owner.spent = seconds if overrun else owner.spent + time.thread_time() - start
    if owner.spent >= seconds and not owner.switched_off:
        owner.switched_off = True
        BUDGET.switched_off.append(owner)
    return found


def take_switched_off() -> list[Any]:
    """The patterns switched off since the last call (each handed out once)."""
    out = list(BUDGET.switched_off)
    BUDGET.switched_off.clear()
    return out
