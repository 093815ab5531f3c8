"""Writers of one process queue on the catalog's write lock (not in SQLite's sleeping busy
handler); a writer that waited too long goes on to SQLite, which decides as before."""
from __future__ import annotations

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
