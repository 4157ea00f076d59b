"""Change history: compare what a scan saw with the stored detections of its domain.

Pure code (no SQLite): :func:`compare` turns a domain's stored detections and one scan's
technologies into a :class:`Plan` (rows to insert, update, count a miss for, remove) and the
change events it implies.  :mod:`detector.store.scans` applies the plan in the same transaction as
the scan row, so the crawl and the refresh record history through one code path.

The rule: a technology is ``removed`` only after ``miss_threshold`` consecutive *counting*
scans (successful, complete, with detection on) no longer see it; a failed or partial scan
never removes anything; a technology that comes back is ``added`` again.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone  # noqa: F401 - timezone: the doctests use it
from typing import Protocol

from detector.errors import DetectorError
from detector.timestamps import format_time
from detector.timestamps import now as clock_now

#: The kinds of change events, as stored in ``changes.kind``.
CHANGE_KINDS = ("added", "removed", "version_changed")
#: Consecutive counting scans without a technology before it is marked removed.
DEFAULT_MISS_THRESHOLD = 2


class DurationError(DetectorError):
    """A duration such as ``7d`` cannot be read."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A detection row as stored: version, status (``active``/``removed``), misses so far."""

    technology: str
    version: str | None
    status: str = "active"
    miss_count: int = 0


class Detected(Protocol):
    """What history needs of a technology a scan saw (a site verdict's detection has it)."""

    @property
    def technology(self) -> str: ...

    @property
    def version(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One event of a domain's history."""

    domain: str
    technology: str
    kind: str
    old_version: str | None
    new_version: str | None
    at: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What one scan does to a domain's detection rows, and the events it records."""

    inserted: tuple[str, ...]  # technologies seen for the first time ever
    revived: tuple[str, ...]  # removed technologies seen again
    seen: tuple[str, ...]  # active technologies seen again (miss count back to 0)
    missed: tuple[tuple[str, int], ...]  # (technology, new miss count), still active
    removed: tuple[str, ...]  # active technologies whose misses reached the threshold
    changes: tuple[Change, ...]


def compare(
    domain: str,
    stored: Mapping[str, Stored],
    seen: Iterable[Detected],
    *,
    at: str,
    counts_misses: bool,
    miss_threshold: int = DEFAULT_MISS_THRESHOLD,
    known: Container[str] | None = None,
    keep: Container[str] = (),
) -> Plan:
    """Plan the row updates and change events of one scan of ``domain``.

    ``counts_misses`` is true only for a successful, complete scan with detection on: any
    other scan can add technologies and change versions but never counts a miss.  ``known``
    names the technologies the scan's signature library can detect: one it cannot (another
    ``--signatures`` set) was not looked for, so not seeing it is no miss.  ``keep`` names
    technologies whose evidence this scan could not look at (a DNS lookup that failed or did
    not run): not seeing them is no miss either.

    >>> old = {"jQuery": Stored("jQuery", "3.6.0"), "PHP": Stored("PHP", None, miss_count=1)}
    >>> from detector.engine import SiteDetection
    >>> jquery = SiteDetection("jQuery", "3.7.1", 100, ("JavaScript libraries",), ())
    >>> plan = compare("a.test", old, [jquery], at="T", counts_misses=True)
    >>> [(c.technology, c.kind, c.old_version, c.new_version) for c in plan.changes]
    [('jQuery', 'version_changed', '3.6.0', '3.7.1'), ('PHP', 'removed', None, None)]
    """
    if miss_threshold < 1:
        raise ValueError("miss_threshold must be at least 1")
    inserted: list[str] = []
    revived: list[str] = []
    again: list[str] = []
    changes: list[Change] = []
    seen_names: set[str] = set()
    for s in sorted(seen, key=lambda s: s.technology):
        if s.technology in seen_names:
            continue
        seen_names.add(s.technology)
        old = stored.get(s.technology)
        if old is None:
            inserted.append(s.technology)
            changes.append(Change(domain, s.technology, "added", None, s.version, at))
        elif old.status != "active":
            revived.append(s.technology)
            changes.append(Change(domain, s.technology, "added", None, s.version or old.version, at))
        else:
            again.append(s.technology)
            if s.version is not None and s.version != old.version:
                changes.append(Change(domain, s.technology, "version_changed", old.version, s.version, at))
    missed: list[tuple[str, int]] = []
    removed: list[str] = []
    if counts_misses:
        for name in sorted(stored):
            old = stored[name]
            if name in seen_names or old.status != "active":
                continue
            if (known is not None and name not in known) or name in keep:
                continue
            if old.miss_count + 1 >= miss_threshold:
                removed.append(name)
                changes.append(Change(domain, name, "removed", old.version, None, at))
            else:
                missed.append((name, old.miss_count + 1))
    return Plan(tuple(inserted), tuple(revived), tuple(again), tuple(missed), tuple(removed), tuple(changes))


# ---------------------------------------------------------------------------- durations

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """A duration from ``30m``, ``12h``, ``7d``, ``2w`` (or ``90s``; ``0`` means none).

    >>> parse_duration("7d"), parse_duration("12h"), parse_duration("2w").days
    (datetime.timedelta(days=7), datetime.timedelta(seconds=43200), 14)
    """
    if text.strip() == "0":
        return timedelta(0)
    m = _DURATION.match(text)
    if not m:
        raise DurationError(
            f'"{text}" is not a duration; write a number and a unit: 30m, 12h, 7d or 2w '
            "(s seconds, m minutes, h hours, d days, w weeks)"
        )
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])


def cutoff(age: timedelta, *, now: datetime | None = None) -> str:
    """The ISO-8601 UTC time ``age`` before now, comparable with stored times as text.

    >>> cutoff(timedelta(days=1), now=datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc))
    '2026-11-22T03:00:00Z'
    """
    moment = (now or clock_now()) - age
    return format_time(moment)


def format_age(seconds: float) -> str:
    """A short age for people: ``45s``, ``12m``, ``5h``, ``3d``, ``6w``.

    >>> format_age(45), format_age(720), format_age(18000), format_age(3 * 86400), format_age(50 * 86400)
    ('45s', '12m', '5h', '3d', '7w')
    """
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    if seconds < 14 * 86400:
        return f"{seconds // 86400:.0f}d"
    return f"{seconds // (7 * 86400):.0f}w"
