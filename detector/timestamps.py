"""The one timestamp format: ISO-8601 UTC text with seconds and a ``Z``, e.g.
``2026-11-23T02:40:00Z``.  Stored times compare correctly as text, and sqlite-utils and
Datasette show them as they are."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from detector.errors import DetectorError

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: Environment variable that sets the clock (an ISO-8601 time) for tests and backfills: every
#: time the crawl, refresh and segment record or judge by is then that moment.
CLOCK_VARIABLE = "DETECTOR_NOW"


def format_time(moment: datetime) -> str:
    """A moment as stored text; a naive moment is taken as UTC.

    >>> format_time(datetime(2026, 11, 23, 2, 40, 0, 500, tzinfo=timezone.utc))
    '2026-11-23T02:40:00Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(FORMAT)


def now() -> datetime:
    """The current moment (UTC), or the moment ``DETECTOR_NOW`` names (tests, backfills).

    Loading a quarter's crawl of an archive with ``DETECTOR_NOW=2026-05-15T09:00:00Z`` stamps
    its scans, detections and changes with that day, as if it had run then.
    """
    fixed = os.environ.get(CLOCK_VARIABLE, "").strip()
    if not fixed:
        return datetime.now(timezone.utc)
    try:
        return parse_time(fixed)
    except ValueError:
        raise DetectorError(
            f"{CLOCK_VARIABLE}={fixed!r} is not an ISO-8601 time; write e.g. 2026-05-15T09:00:00Z "
            f"or unset it to use the real clock"
        ) from None


def utc_now() -> str:
    """The current time as stored text (see :func:`now`)."""
    return format_time(now())


def parse_time(text: str) -> datetime:
    """Stored text (or any ISO-8601 time; naive means UTC) back to an aware datetime.

    >>> parse_time("2026-11-23T02:40:00Z").isoformat()
    '2026-11-23T02:40:00+00:00'
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
