"""Build step: put the signature library, its licence and notice, and the example rules in the wheel.

The repository keeps them at the top (``signatures/``, ``examples/rules.yaml``) where people edit
them; a built package carries a copy as ``detector/_data/...``, which ``detector.bundled`` reads
with importlib.resources.  An editable install reads the repository's folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# (source in the repository, destination under detector/_data/)
SHIPPED = (("signatures", "signatures"), ("examples/rules.yaml", "examples/rules.yaml"))


class BuildWithData(build_py):
    """``build_py`` that also copies the shipped data into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's folders
        target = Path(self.build_lib) / "detector" / "_data"
        for source, dest in SHIPPED:
            src, dst = HERE / source, target / dest
            if not src.exists():
                raise SystemExit(f"{src}: missing; a detector package cannot be built without it")
            if dst.exists():
                shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithData})
