"""On-disk cache of compiled engines, keyed by the library's content and this code's version.

A compiled library takes seconds to build and a fraction of a second to unpickle; every crawl
worker and every ``detector detect`` loads one.  The key is what the engine is made of (the
library's content digest, the engine code, the accelerator choices, the mode, the Python
version), never where the library lives: a checkout, a wheel in a venv and a copy elsewhere
share one entry, and an edited file makes a new one.  After each write only the newest
:data:`KEEP` entries stay.  A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from detector.engine.signatures import library_digest

#: Compiled engines kept in the cache (most recently used first); older ones are deleted.
#: $DETECTOR_CACHE_KEEP overrides it (the test suite compiles many small libraries).
KEEP = 6
#: A temporary file this old is left over from a killed writer.
_STALE_TMP_SECONDS = 3600


def cache_directory() -> Path:
    """Where compiled engines are cached: $DETECTOR_CACHE_DIR, else $XDG_CACHE_HOME/detector."""
    env = os.environ.get("DETECTOR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "detector"


def code_version() -> str:
    """A short hash of the source of every module of the engine package (cdn, globals and
    assets build indexes at compile time too): any change to them invalidates the cache."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("*.py")):  # every engine module: a new one counts too
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_path(directories: Sequence[Path | str] | None, hyperscan: bool, accelerate: bool,
               mode: str = "detector") -> Path:
    """The cache file for this library's content, this code, these accelerator choices and this mode."""
    parts = [library_digest(directories, layers=mode != "wappalyzer"), code_version(), f"hs={hyperscan}",
             f"acc={accelerate}", f"mode={mode}", sys.version.split()[0]]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return cache_directory() / f"engine-{key}.pickle"


def read_cache(path: Path) -> object | None:
    """The cached object, or None when it is missing, truncated or from incompatible code."""
    try:
        with path.open("rb") as f:
            obj: object = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return None
    try:
        os.utime(path)  # used now: the cleaning keeps the most recently used entries
    except OSError:
        pass
    return obj


def keep_count() -> int:
    """How many engines the cache keeps: $DETECTOR_CACHE_KEEP, else :data:`KEEP`."""
    try:
        return max(1, int(os.environ.get("DETECTOR_CACHE_KEEP", "")))
    except ValueError:
        return KEEP


def write_cache(path: Path, engine: object, keep: int | None = None) -> None:
    """Write atomically (temporary file, then rename), then keep only the newest ``keep`` entries."""
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
        return
    clean_cache(path.parent, keep_count() if keep is None else keep)


def clean_cache(directory: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the ``keep`` most recently used engines, and leftover temporary files.

    Returns what was deleted.  Entries another process deletes meanwhile are skipped.
    """
    entries: list[tuple[float, Path]] = []
    removed: list[Path] = []
    now = time.time()
    try:
        listing = list(directory.iterdir())
    except OSError:
        return removed
    for p in listing:
        try:
            mtime = p.stat().st_mtime
        except OSError:
            continue
        if p.name.startswith("engine-") and p.suffix == ".pickle":
            entries.append((mtime, p))
        elif p.name.startswith("engine-") and p.suffix == ".tmp" and now - mtime > _STALE_TMP_SECONDS:
            removed += _unlink(p)
    entries.sort(reverse=True)
    for _, p in entries[max(0, keep):]:
        removed += _unlink(p)
    return removed


def _unlink(path: Path) -> list[Path]:
    try:
        path.unlink()
    except OSError:
        return []
    return [path]
