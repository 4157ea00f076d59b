"""Every example in a docstring of the package holds: doctest runs each module's."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import detector

MODULES = sorted(m.name for m in pkgutil.walk_packages(detector.__path__, "detector.")
                 if not m.name.endswith("__main__"))


def test_the_package_has_examples() -> None:
    assert len(MODULES) > 50


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_hold(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} examples failed"
