"""The one timestamp format: ISO-8601 UTC text with seconds and a ``Z``, e.g.
``2026-11-23T02:40:00Z``.  Stored times compare correctly as text, and sqlite-utils and
Datasette show them as they are."""

from __future__ import annotations

from datetime import datetime, timezone

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    """A moment as stored text; a naive moment is taken as UTC.

    >>> format_time(datetime(2026, 11, 23, 2, 40, 0, 500, tzinfo=timezone.utc))
    '2026-11-23T02:40:00Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(FORMAT)


def utc_now() -> str:
    """The current time as stored text."""
    return format_time(datetime.now(timezone.utc))


def parse_time(text: str) -> datetime:
    """Stored text (or any ISO-8601 time; naive means UTC) back to an aware datetime.

    >>> parse_time("2026-11-23T02:40:00Z").isoformat()
    '2026-11-23T02:40:00+00:00'
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
