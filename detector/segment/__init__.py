"""Technographic segmentation: cohort rules (``rules``) and assigning accounts to them (``assign``)."""
