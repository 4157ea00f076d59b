"""One writer at a time: an exclusive ``flock`` on ``<database>.lock`` beside the database.

The lock belongs to an open file description, so the kernel releases it when the holder
exits in any way (``kill -9`` included): a killed run never blocks the next one.  The file
itself stays; only the lock on it matters.  Its text (pid, command, start time) is there to
make the message of a refused run useful.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from detector.errors import EX_TEMPFAIL, DetectorError
from detector.timestamps import utc_now


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


#: Locks this process holds: lock file -> (descriptor, depth).
_HELD: dict[str, tuple[int, int]] = {}


class DatabaseLock:
    """The exclusive lock of one database, held by this process until :meth:`release`.

    Re-entrant within a process: a run that holds its database's lock may open the database
    again (the crawl's writer, a migration) without waiting for itself.
    """

    def __init__(self, db_path: str | Path, command: str) -> None:
        self.db_path = db_path
        self.command = command
        self.path = lock_path(db_path)
        self._key = str(self.path.resolve())
        self._acquired = False

    def acquire(self, *, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds; raise :class:`LockedError` if held."""
        if self._acquired:
            return
        held = _HELD.get(self._key)
        if held is not None:
            _HELD[self._key] = (held[0], held[1] + 1)
            self._acquired = True
            return
        fd = self._open()
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"{self.db_path} is in use by another run ({holder or 'holder unknown'}; lock "
                        f"{self.path}). Nothing was done; this {self.command} exits with status "
                        f"{EX_TEMPFAIL} so a scheduler can simply try again at its next slot."
                    ) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {self.command} since {utc_now()}\n".encode(), 0)
        _HELD[self._key] = (fd, 1)
        self._acquired = True

    def release(self) -> None:
        """Give the lock back (the outermost holder in this process closes the file)."""
        if not self._acquired:
            return
        self._acquired = False
        fd, depth = _HELD[self._key]
        if depth > 1:
            _HELD[self._key] = (fd, depth - 1)
            return
        del _HELD[self._key]
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DetectorError(
                f"{self.path}: cannot create the lock file ({exc.strerror}). "
                "Check the database's folder is writable, or pick another --db."
            ) from None


@contextmanager
def database_lock(db_path: str | Path, command: str, *, wait: float = 0.0) -> Iterator[Path]:
    """Hold the database's lock for the block, or raise :class:`LockedError` (after ``wait`` s)."""
    lock = DatabaseLock(db_path, command)
    lock.acquire(wait=wait)
    try:
        yield lock.path
    finally:
        lock.release()


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
