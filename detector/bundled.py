"""Files shipped with detector: the signature library, its licence and notice, the example rules.

A wheel (and ``pip install .``) carries them inside the package, as ``detector/_data/...``
(``setup.py`` copies them there at build time); a source checkout or an editable install reads
the repository's own ``signatures/`` and ``examples/`` folders beside the package.  Both are
found with :mod:`importlib.resources`, so nothing depends on the current directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The package folder that a built wheel holds the shipped data in.
DATA_PACKAGE_FOLDER = "_data"


def _package_root() -> Path:
    root = files("detector")
    # pip installs wheels unpacked, and a checkout is a folder: both give a real path.  A zipped
    # import (zipapp, zipimport) does not; the library needs files on disk to be walked.
    if not isinstance(root, Path):
        raise FileNotFoundError("detector is imported from a zip archive; its data cannot be read from there")
    return root


def data_path(*parts: str) -> Path | None:
    """The shipped file or folder ``parts`` (e.g. ``"signatures"``), or None when it is not there.

    The packaged copy comes first, then the checkout's folder beside the package.
    """
    try:
        root = _package_root()
    except FileNotFoundError:
        return None
    for candidate in (root.joinpath(DATA_PACKAGE_FOLDER, *parts), root.parent.joinpath(*parts)):
        if candidate.exists():
            return candidate
    return None


def signatures_directory() -> Path | None:
    """The bundled signature library (a folder holding ``categories.yaml``), if shipped."""
    found = data_path("signatures")
    return found if found is not None and (found / "categories.yaml").is_file() else None


def example_rules() -> Path | None:
    """The commented example rules file (``examples/rules.yaml``), if shipped."""
    found = data_path("examples", "rules.yaml")
    return found if found is not None and found.is_file() else None
