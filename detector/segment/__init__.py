"""Technographic segmentation: cohort rules (``rules``), assigning accounts to them (``assign``)
and one whole segmentation of a database (:func:`run`, from ``runner``).

``rules`` and ``assign`` work on plain records: importing them pulls in no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detector.segment.runner import SegmentReport

__all__ = ["run"]


def run(db_path: str | Path, rules_path: str | Path, **kwargs: Any) -> SegmentReport:
    """Segment a database's accounts (see :func:`detector.segment.runner.run`)."""
    from detector.segment.runner import run as run_segment

    return run_segment(db_path, rules_path, **kwargs)
