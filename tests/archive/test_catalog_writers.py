"""Writers queue on the catalog's write lock (threads of one process) and on an flock of a file
beside it (processes), not in SQLite's sleeping busy handler; a writer that waited too long for
the threads goes on to SQLite, which decides as before."""
from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time

from archive import audit
from archive.catalog import Catalog


def test_concurrent_audit_writers_all_land_in_one_unbroken_chain(tmp_path):
    catalog = Catalog(tmp_path / "catalog.db")
    errors = []

    def write(n):
        try:
            for i in range(25):
                catalog.append_audit(f"user{n}", "search", detail={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = audit.verify(catalog)
    assert report.ok and report.checked == 12 * 25


def test_a_writer_waits_for_the_one_holding_the_queue(tmp_path):
    catalog = Catalog(tmp_path / "catalog.db")
    done = threading.Event()
    catalog._write_lock.acquire()
    writer = threading.Thread(target=lambda: (catalog.append_audit("a", "x"), done.set()))
    writer.start()
    try:
        assert not done.wait(0.3)  # queued behind the holder
    finally:
        catalog._write_lock.release()
    assert done.wait(5)
    writer.join()
    assert [e["actor"] for e in catalog.audit_entries()] == ["a"]


def test_a_writer_that_waited_too_long_goes_on_to_sqlite(tmp_path):
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.WRITE_QUEUE_TIMEOUT = 0.2
    catalog._write_lock.acquire()  # held and never released, e.g. by a stuck thread
    try:
        started = time.monotonic()
        entry = catalog.append_audit("b", "y")
        assert 0.2 <= time.monotonic() - started < 5
        assert catalog.audit_entries()[-1]["hash"] == entry["hash"]
        assert catalog._write_lock.locked()  # the holder's lock was not released by the writer
    finally:
        catalog._write_lock.release()


# -- several processes (tcd serve runs one per core) ---------------------------------------------

def _append_many(path: str, name: str, count: int, start, ready=None) -> None:
    catalog = Catalog(path)
    if ready is not None:
        ready.set()  # opened (and migrated): all that is left to do is appending
    start.wait(30)
    for i in range(count):
        catalog.append_audit(name, "search", detail={"i": i})


def test_writers_of_several_processes_make_one_unbroken_chain(tmp_path):
    path = tmp_path / "catalog.db"
    Catalog(path)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_append_many, args=(str(path), f"p{n}", 60, start)) for n in range(3)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    report = audit.verify(Catalog(path))
    assert report.ok and report.checked == 3 * 60


def test_a_writer_of_another_process_waits_its_turn_on_the_writers_file(tmp_path):
    path = tmp_path / "catalog.db"
    reader = Catalog(path)  # opened first: opening migrates, which is a write
    context = multiprocessing.get_context("fork")
    ready, start = context.Event(), context.Event()
    other = context.Process(target=_append_many, args=(str(path), "other", 1, start, ready))
    other.start()
    assert ready.wait(30)  # its catalog is open: only append_audit can wait for the lock below
    with open(tmp_path / "catalog.db-writers", "ab") as writers:
        fcntl.flock(writers, fcntl.LOCK_EX)  # as another process's transaction holds it
        start.set()
        other.join(1.5)
        assert other.is_alive() and reader.audit_entries() == []  # queued
        fcntl.flock(writers, fcntl.LOCK_UN)
    other.join(30)
    assert other.exitcode == 0
    assert [e["actor"] for e in reader.audit_entries()] == ["other"]


def test_a_forked_child_opens_its_own_connection(tmp_path):
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.append_audit("parent", "x")
    parent_conn = catalog.db
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        ok = False
        try:
            own = catalog.db is not parent_conn
            catalog.append_audit("child", "y")
            ok = own  # only once the append went through too
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert [e["actor"] for e in catalog.audit_entries()] == ["parent", "child"]
    assert audit.verify(catalog).ok


def test_a_single_statement_write_queues_too(tmp_path):
    """Writes outside an explicit transaction (job progress, fixity rows, …) wait on the same
    queue: they once went straight to SQLite's sleeping busy handler."""
    catalog = Catalog(tmp_path / "catalog.db")
    done = threading.Event()
    with open(tmp_path / "catalog.db-writers", "ab") as writers:
        fcntl.flock(writers, fcntl.LOCK_EX)  # another process is writing
        writer = threading.Thread(target=lambda: (catalog.start_fixity_run("all objects"), done.set()))
        writer.start()
        try:
            assert not done.wait(0.5)  # queued behind the other process
        finally:
            fcntl.flock(writers, fcntl.LOCK_UN)
    assert done.wait(10)
    writer.join()
    assert catalog.last_fixity_run() is None and len(catalog.list_fixity_runs()) == 1
