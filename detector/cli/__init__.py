"""The ``detector`` command: one module per command group, each only parsing options, calling a
library function and printing its report."""

from __future__ import annotations

from detector.cli.main import cli

__all__ = ["cli"]
