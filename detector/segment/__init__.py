"""Technographic segmentation: cohort rules (``rules``), assigning accounts to them (``assign``)
and one whole segmentation of a database (:func:`run`, from ``runner``)."""

from __future__ import annotations

from detector.segment.runner import SegmentReport, run

__all__ = ["SegmentReport", "run"]
