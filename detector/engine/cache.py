"""On-disk cache of compiled engines, keyed by the library's content and this code's version.

A compiled library takes seconds to build and a fraction of a second to unpickle; every crawl
worker and every ``detector detect`` loads one.  A cache that cannot be read or written is
simply not used.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

from detector.engine.signatures import library_digest, resolve_directories

# The modules whose code shapes a compiled engine: a change to any of them invalidates the cache.
_ENGINE_CODE = ("match.py", "patterns.py", "prefilter.py", "signatures.py", "page.py", "cache.py", "evidence.py",
                "loader.py")


def cache_directory() -> Path:
    """Where compiled engines are cached: $DETECTOR_CACHE_DIR, else $XDG_CACHE_HOME/detector."""
    env = os.environ.get("DETECTOR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "detector"


def code_version() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _ENGINE_CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


def cache_path(directories: Sequence[Path | str] | None, hyperscan: bool, accelerate: bool,
               mode: str = "detector") -> Path:
    """The cache file for this library, this code, these accelerator choices and this engine mode."""
    dirs = [str(d.resolve()) for d in resolve_directories(directories)]
    parts = [library_digest(directories, layers=mode != "wappalyzer"), code_version(), f"hs={hyperscan}", f"acc={accelerate}",
             f"mode={mode}", sys.version.split()[0], *dirs]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return cache_directory() / f"engine-{key}.pickle"


def read_cache(path: Path) -> object | None:
    """The cached object, or None when it is missing, truncated or from incompatible code."""
    try:
        with path.open("rb") as f:
            obj: object = pickle.load(f)
        return obj
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return None


def write_cache(path: Path, engine: object) -> None:
    """Write atomically (temporary file, then rename)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            pickle.dump(engine, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError):
        try:
            tmp.unlink()
        except OSError:
            pass
