"""The Store: one database file, its connection, its lock, its migrations and its transactions.

Every write of every command goes through a Store::

    with Store.open("detector.db", lock="segment") as store:   # holds the lock until closed
        with store.transaction():
            ...

Opening applies pending migrations under the database's lock, each atomically, so a new
database opened by several processes at once is created exactly once, and a migration killed
half-way runs again at the next open.  A Store opened without ``lock`` (readers: ``status``,
``changes``) takes the lock only for the moment it migrates, if anything is pending.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Container, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from detector.store import schema
from detector.store.history import DEFAULT_MISS_THRESHOLD
from detector.store.lock import DatabaseLock
from detector.store.scans import (
    ReadOnlyDatabaseError,
    ScanResult,
    StorageError,
    add_domains,
    close_dead_runs,
    finish_run,
    mirror_library,
    read_only_message,
    record_scans,
    start_run,
)
from detector.store.transaction import transaction

if TYPE_CHECKING:
    from typing_extensions import Self

#: How long opening waits for another process that is creating or migrating the database.
MIGRATION_WAIT = 60.0
#: How long a statement waits for another writer's transaction before failing.
BUSY_TIMEOUT = 30.0


class Store:
    """A database file opened for use: connection, lock, migrations, transactions."""

    def __init__(self, path: Path, db: sqlite_utils.Database, lock: DatabaseLock | None) -> None:
        self.path = path
        self.db = db
        self._lock = lock

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, lock: str | None = None, busy_timeout: float = BUSY_TIMEOUT,
             writable: bool = False) -> Store:
        """Open (creating if needed) a database with every migration applied.

        ``lock``: the command name to hold the database's lock for until :meth:`close`
        (raises :class:`~detector.store.lock.LockedError` at once if another run holds it).
        With ``lock`` or ``writable``, a database this user cannot write raises
        :class:`ReadOnlyDatabaseError` now, before anything is done.
        """
        p = _check_path(path)
        held = DatabaseLock(p, lock) if lock else None
        if held:
            held.acquire()
        try:
            db = _connect(p, busy_timeout)
            try:
                if schema.pending(db) or not _is_wal(db):
                    with _migration_lock(p, held):
                        db.execute("PRAGMA journal_mode=WAL")
                        schema.migrate(db)
                if held or writable:
                    _probe_write(db)
            except BaseException:
                db.close()
                raise
        except sqlite3.DatabaseError as exc:
            if held:
                held.release()
            if _is_read_only(exc):
                raise ReadOnlyDatabaseError(read_only_message(path, exc)) from None
            raise StorageError(
                f"{path}: cannot open or write the database ({exc}). "
                "Check the file is a SQLite database you may write, or pick another --db."
            ) from None
        except BaseException:
            if held:
                held.release()
            raise
        return cls(p, db, held)

    def close(self) -> None:
        """Close the connection and give the lock back."""
        try:
            self.db.close()
        finally:
            if self._lock:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def locked(self) -> bool:
        """True while this Store holds the database's lock."""
        return self._lock is not None

    # ------------------------------------------------------------------ writing
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls the whole block back."""
        return transaction(self.db)

    def record_scans(
        self,
        results: Iterable[ScanResult],
        *,
        miss_threshold: int = DEFAULT_MISS_THRESHOLD,
        known: Container[str] | None = None,
        once_per_run: bool = False,
    ) -> int:
        """Write scans with their detections and change events in one transaction.

        ``once_per_run``: skip scans whose (run, domain) is stored already; return how many were written.
        """
        return record_scans(self.db, results, miss_threshold=miss_threshold, known=known,
                            once_per_run=once_per_run)

    def add_domains(self, domains: Iterable[str], *, now: str | None = None) -> None:
        """Register domains in one transaction (``added_at`` kept for known ones)."""
        add_domains(self.db, domains, now=now)

    def mirror_library(self, library: Any) -> None:
        """Replace the technologies and categories tables from a signature library, atomically."""
        mirror_library(self.db, library)

    def start_run(self, run_id: str, command: str, *, planned: int | None, options: Mapping[str, Any],
                  resume: bool = False) -> None:
        """Record that a run began (``resume``: or began again); call it holding the lock."""
        start_run(self.db, run_id, command, planned=planned, options=options, resume=resume)

    def finish_run(self, run_id: str, status: str = "done") -> None:
        """Record a run's end."""
        finish_run(self.db, run_id, status)

    def render_skipped(self) -> frozenset[str]:
        """Domains whose latest scan left the render out for the budget (``scans.render = 'skipped'``)."""
        return frozenset(r[0] for r in self.db.execute(  # domains.last_scanned_at: the latest scan's end
            "SELECT s.domain FROM scans s JOIN domains d ON d.domain = s.domain "
            "AND s.finished_at = d.last_scanned_at WHERE s.render = 'skipped'"))

    def close_dead_runs(self) -> list[str]:
        """Mark runs left ``running`` by dead processes as ``interrupted``; needs the lock."""
        if not self.locked:
            raise StorageError("close_dead_runs needs the database's lock (open the Store with lock=...)")
        return close_dead_runs(self.db)


def open_database(path: str | Path) -> sqlite_utils.Database:
    """A database opened for reading and queries (a :class:`Store`'s sqlite-utils view)."""
    return Store.open(path).db


# ---------------------------------------------------------------------------- helpers


def _check_path(path: str | Path) -> Path:
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise StorageError(f"{path}: the folder {p.parent} does not exist. Create it or pick another --db.")
    if p.exists() and p.is_dir():
        raise StorageError(f"{path}: is a folder, not a database file. Pick a file name with --db.")
    return p


def _connect(path: Path, busy_timeout: float) -> sqlite_utils.Database:
    # Autocommit mode: every transaction is explicit (transaction()), nothing is implicit.
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA synchronous=NORMAL")
    # Every connection enforces the links of migration 10 (a scan or detection names a known
    # domain, a detection a known technology); SQLite leaves them off unless asked.
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _probe_write(db: sqlite_utils.Database) -> None:
    """Write and roll back, so a read-only database fails here rather than half-way through a run."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE _write_probe (x)")
    finally:
        db.execute("ROLLBACK")


def _is_read_only(exc: sqlite3.DatabaseError) -> bool:
    """SQLite refused to write because the file, its journal or its folder is read-only."""
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc).lower()
    return name.startswith("SQLITE_READONLY") or "readonly database" in text or (
        name == "SQLITE_CANTOPEN" or "unable to open database file" in text)


def _is_wal(db: sqlite_utils.Database) -> bool:
    return str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"


@contextmanager
def _migration_lock(path: Path, held: DatabaseLock | None) -> Iterator[None]:
    """The database's lock for the moment of migrating: the Store's own, or taken briefly."""
    if held is not None:
        yield
        return
    lock = DatabaseLock(path, "migration")
    lock.acquire(wait=MIGRATION_WAIT)
    try:
        yield
    finally:
        lock.release()
