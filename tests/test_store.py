"""The Store: atomic migrations under the lock, transactions that roll back, concurrent opens,
commands that write taking the lock.  Real SQLite files, real processes, real kill -9."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli import cli
from detector.engine.signatures import load_signatures
from detector.store.lock import EX_TEMPFAIL, LockedError, database_lock
from detector.store.scans import StorageError
from detector.store.schema import MIGRATIONS, pending
from detector.store.store import Store
from tests.conftest import ROOT, TEST_SIGNATURES


def python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_a_migration_killed_half_way_leaves_the_database_openable(tmp_path: Path) -> None:
    """The history migration dies (SIGKILL) after its first ALTER; the next open re-runs it."""
    path = tmp_path / "x.db"
    proc = python(
        """
        import os, signal, sys
        from detector.store import schema
        from detector.store.store import Store

        number, name, real = schema.MIGRATIONS[2]

        def dies_half_way(db):
            db.execute("ALTER TABLE detections ADD COLUMN miss_count INTEGER NOT NULL DEFAULT 0")
            os.kill(os.getpid(), signal.SIGKILL)

        schema.MIGRATIONS[2] = (number, name, dies_half_way)
        Store.open(sys.argv[1])
        """,
        str(path),
    )
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert "miss_count" not in columns(path, "detections")  # the ALTER was rolled back
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM _migrations ORDER BY id")] == [1, 2]

    with Store.open(path) as store:
        assert pending(store.db) == []
        assert {"miss_count"} <= columns(path, "detections")
        assert {"pages_failed", "counted"} <= columns(path, "scans")
        assert [r[0] for r in store.db.execute("SELECT id FROM _migrations ORDER BY id")] == [m[0] for m in MIGRATIONS]


def test_four_processes_opening_one_new_database_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    start = time.time() + 1.5  # every process imports first, then all open at the same moment
    procs = [
        python(
            """
            import sys, time
            from detector.store.store import Store
            time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
            with Store.open(sys.argv[1]) as store:
                with store.transaction():
                    store.add_domains([f"d{sys.argv[3]}.test"])
            print("ok")
            """,
            str(path), str(start), str(i),
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    with Store.open(path) as store:
        assert [r[0] for r in store.db.execute("SELECT id FROM _migrations ORDER BY id")] == [m[0] for m in MIGRATIONS]
        assert store.db.execute("SELECT count(*) FROM domains").fetchone()[0] == 4
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_transaction_rolls_everything_back_on_any_exception(tmp_path: Path) -> None:
    library = load_signatures([TEST_SIGNATURES])
    with Store.open(tmp_path / "x.db") as store:
        store.mirror_library(library)
        before = store.db.execute("SELECT count(*) FROM technologies").fetchone()[0]
        assert before == len(library.signatures)
        with pytest.raises(KeyboardInterrupt), store.transaction():
            store.db.execute("DELETE FROM technologies")
            store.add_domains(["a.test", "b.test"])
            raise KeyboardInterrupt  # not only Exception: an interrupted command loses nothing either
        assert store.db.execute("SELECT count(*) FROM technologies").fetchone()[0] == before
        assert store.db.execute("SELECT count(*) FROM domains").fetchone()[0] == 0
        assert not store.db.conn.in_transaction


def test_mirror_library_is_all_or_nothing(tmp_path: Path) -> None:
    """A mirror that fails half-way (here: a category that violates the table) keeps the old rows."""
    library = load_signatures([TEST_SIGNATURES])
    with Store.open(tmp_path / "x.db") as store:
        store.mirror_library(library)
        before = store.db.execute("SELECT count(*) FROM technologies").fetchone()[0]
        first = next(iter(library.categories.values()))
        broken = type("Broken", (), {"signatures": library.signatures, "groups": library.groups,
                                     "categories": {**library.categories, "dup": first}})()
        with pytest.raises(sqlite3.IntegrityError):
            store.mirror_library(broken)  # the duplicate category id fails after the technologies
        assert store.db.execute("SELECT count(*) FROM technologies").fetchone()[0] == before


def test_opening_with_the_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    holder = python(
        """
        import sys, time
        from detector.store.store import Store
        with Store.open(sys.argv[1], lock="crawl"):
            print("held", flush=True)
            time.sleep(30)
        """,
        str(path),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match="in use by another run .*crawl"):
            Store.open(path, lock="segment")
        with Store.open(path) as reader:  # readers never wait for the lock once migrated
            assert not reader.locked
    finally:
        holder.kill()
        holder.wait()
    with Store.open(path, lock="segment") as store:  # released when the holder died
        assert store.locked
    with database_lock(path, "again"):
        pass


@pytest.mark.parametrize(
    "argv",
    [
        ["accounts", "import", "{csv}", "--db", "{db}"],
        ["segment", "--rules", "{rules}", "--db", "{db}", "--signatures", "{signatures}"],
    ],
    ids=["accounts-import", "segment"],
)
def test_writing_commands_take_the_lock(tmp_path: Path, argv: list[str]) -> None:
    db = tmp_path / "x.db"
    csv = tmp_path / "accounts.csv"
    csv.write_text("domain,industry\nacme.test,retail\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("product:\n  name: X\n  competitors: [PressCMS]\n")
    Store.open(db).close()
    holder = python(
        """
        import sys, time
        from detector.store.lock import database_lock
        with database_lock(sys.argv[1], "refresh"):
            print("held", flush=True)
            time.sleep(30)
        """,
        str(db),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        args = [a.format(csv=csv, db=db, rules=rules, signatures=TEST_SIGNATURES) for a in argv]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == EX_TEMPFAIL, result.output
        assert "in use by another run" in result.output
    finally:
        holder.kill()
        holder.wait()


def test_a_bad_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("this is not a database " * 100)
    with pytest.raises(StorageError, match="cannot open or write"):
        Store.open(path, lock="crawl")
    with Store.open(path.with_name("good.db"), lock="crawl"):  # the failed open gave its lock back
        pass
    with database_lock(path, "crawl"):
        pass
