"""Transactions: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction; any exception rolls all of it back and re-raises.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start, so a transaction never fails
    half-way because another writer got there first (it waits up to the busy timeout instead).
    Inside an open transaction the block simply joins it (sqlite-utils' own calls use
    savepoints, so they join it too).
    """
    conn = db.conn
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
