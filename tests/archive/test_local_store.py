"""The local object store refuses a copy that does not match: a source that changed while it was
being stored, or a copy that reads back differently; either way nothing is stored and no
temporary file is left."""
from __future__ import annotations

import hashlib

import pytest

from archive import store as store_module
from archive.errors import IntegrityError
from archive.store import LocalStore


def leftovers(store: LocalStore) -> list:
    return sorted(p.name for p in store.root.rglob("*") if p.is_file())


def test_a_source_that_changed_since_it_was_hashed_is_refused(tmp_path):
    store = LocalStore(tmp_path / "objects")
    source = tmp_path / "Phiên họp – điểm cầu xã.mp4"
    source.write_bytes(b"first recording " * 10_000)
    hashed = hashlib.sha256(source.read_bytes()).hexdigest()  # as ingest hashes it on receipt
    source.write_bytes(b"something else " * 10_000)            # then the file changes
    with pytest.raises(IntegrityError, match=rf"changed while it was being stored \(expected "
                                             rf"{hashed[:12]}…, read [0-9a-f]{{12}}…\); ingest it again"):
        store.put_file(source, hashed)
    assert leftovers(store) == []
    assert not store.exists(hashed)
    assert not store.exists(hashlib.sha256(source.read_bytes()).hexdigest())


def test_a_copy_that_reads_back_differently_is_refused(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "objects")
    source = tmp_path / "ghi-âm.wav"
    source.write_bytes(b"\x00\x01" * 50_000)
    # a stand-in for a disk that returns other bytes than were written
    monkeypatch.setattr(store_module, "hash_file", lambda path: ("f" * 64, path.stat().st_size))
    with pytest.raises(IntegrityError, match="reads back differently; check the disk"):
        store.put_file(source)
    assert leftovers(store) == []
