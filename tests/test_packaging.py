"""A built package carries its data: the signature library, its licence and notice, the example rules.

The full wheel round trip (build, install in a fresh venv, run from another folder) is in .ci/run;
here the build step that copies the data is run for real into a temporary build folder, and the
package imported from there, away from the checkout, finds its library through importlib.resources.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from detector import bundled
from detector.engine.signatures import default_directory
from tests.conftest import ROOT


def test_a_checkout_reads_its_own_folders() -> None:
    assert default_directory() == ROOT / "signatures"
    assert bundled.example_rules() == ROOT / "examples" / "rules.yaml"
    assert not (ROOT / "detector" / bundled.DATA_PACKAGE_FOLDER).exists()  # only ever in a build


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``setup.py build_py`` into a temporary folder: what a wheel holds."""
    lib = tmp_path_factory.mktemp("build") / "lib"
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return lib


def test_the_build_copies_the_whole_library_licence_and_rules(built: Path) -> None:
    data = built / "detector" / "_data"
    shipped = sorted(p.relative_to(data / "signatures") for p in (data / "signatures").rglob("*") if p.is_file())
    source = sorted(p.relative_to(ROOT / "signatures") for p in (ROOT / "signatures").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)
    assert shipped == source  # every folder, so a new layer (signatures/detector/) ships too
    for name in ("LICENSE.wappalyzer", "NOTICE.wappalyzer", "categories.yaml"):
        assert (data / "signatures" / name).read_bytes() == (ROOT / "signatures" / name).read_bytes()
    assert (data / "examples" / "rules.yaml").read_bytes() == (ROOT / "examples" / "rules.yaml").read_bytes()


def test_a_built_package_finds_its_data_from_another_folder(built: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text('<html><head><meta name="generator" content="WordPress 6.4"></head></html>', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DETECTOR_SIGNATURES")}
    env["PYTHONPATH"] = str(built)
    code = (
        "import detector, detector.bundled as b\n"
        "from detector.engine.signatures import default_directory\n"
        "print(detector.__file__); print(default_directory()); print(b.example_rules())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    where = built / "detector"
    assert done.stdout.splitlines() == [str(where / "__init__.py"), str(where / "_data" / "signatures"),
                                        str(where / "_data" / "examples" / "rules.yaml")]
    detect = subprocess.run([sys.executable, "-m", "detector", "detect", "--html", str(page), "--json"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert detect.returncode == 0, detect.stderr
    assert '"name": "WordPress"' in detect.stdout
