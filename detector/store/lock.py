"""One writer at a time: an exclusive ``flock`` on ``<database>.lock`` beside the database.

The lock belongs to an open file description, so the kernel releases it when the holder
exits in any way (``kill -9`` included): a killed run never blocks the next one.  The file
itself stays; only the lock on it matters.  Its text (pid, command, start time) is there to
make the message of a refused run useful.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from detector.errors import DetectorError

#: Exit status of a run refused because another holds the lock (sysexits.h EX_TEMPFAIL).
EX_TEMPFAIL = 75


class LockedError(DetectorError):
    """Another run holds the database's lock; try again later (exit status 75)."""

    exit_code = EX_TEMPFAIL


def lock_path(db_path: str | Path) -> Path:
    """The lock file of a database: its name plus ``.lock``, in the same folder.

    >>> str(lock_path("data/detector.db"))
    'data/detector.db.lock'
    """
    p = Path(db_path)
    return p.with_name(p.name + ".lock")


@contextmanager
def database_lock(db_path: str | Path, command: str) -> Iterator[Path]:
    """Hold the database's lock for the block, or raise :class:`LockedError` at once."""
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DetectorError(
            f"{path}: cannot create the lock file ({exc.strerror}). "
            "Check the database's folder is writable, or pick another --db."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise LockedError(
                f"{db_path} is in use by another run ({holder or 'holder unknown'}; lock {path}). "
                f"Nothing was done; this {command} exits with status {EX_TEMPFAIL} so a scheduler "
                "can simply try again at its next slot."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {command} since {_now()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_holder(db_path: str | Path) -> str | None:
    """The running holder of a database's lock (``pid 42, refresh since ...``), or None.

    Reads the lock file and checks its pid is alive, without touching the lock itself, so
    asking never makes a starting run fail.  A holder killed with ``kill -9`` leaves its text
    behind but not its process: it is not a holder.
    """
    try:
        text = lock_path(db_path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    words = text.split()
    if len(words) < 2 or words[0] != "pid" or not words[1].rstrip(",").isdigit():
        return None
    try:
        os.kill(int(words[1].rstrip(",")), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return text


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
