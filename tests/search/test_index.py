"""Keeping the index in step with the catalog, and what happens to writers, readers and crashes."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from whoosh import index as whoosh_index

from archive.errors import ArchiveError
from search import IndexBusy, open_index

from .conftest import seg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def indexed(archive, make_session):
    session, rec = make_session("Phiên tiếp công dân tháng 4", "2025-04-01", [
        seg(0.0, "đề nghị bồi thường thỏa đáng"), seg(5.0, "nội dung bí mật của vụ việc")])
    index = open_index(archive)
    index.sync()
    return index, session, rec


def generation_dir(archive) -> Path:
    root = archive.settings.index_dir
    return root / (root / "CURRENT").read_text().strip()


def test_sync_follows_corrections_and_is_cheap_when_nothing_changed(archive, indexed):
    index, session, rec = indexed
    assert index.sync() == 0
    archive.catalog.add_transcript(recording_id=rec.id, kind="human", author="thu ky",
                                   segments=[seg(0.0, "đề nghị hỗ trợ tái định cư", words=False)])
    assert index.search("bồi thường").total == 1  # not synced yet: the old text
    assert index.sync() == 1
    assert index.search("bồi thường").total == 0
    hit = index.search("tái định cư").hits[0]
    assert hit.session_id == session.id and hit.start == 0.0


def test_metadata_change_and_session_gone(archive, indexed, make_session):
    index, session, _ = indexed
    archive.catalog.update_session(session.id, {"title": "Khiếu nại thu hồi đất nông nghiệp"})
    empty = archive.catalog.create_session({"title": "Phiên chưa có bản ghi", "held_on": "2025-05-05"})
    assert index.sync() == 2
    assert index.search("nông nghiệp").hits[0].session_id == session.id
    assert index.search("chưa có bản ghi").hits[0].session_id == empty.id
    assert archive.catalog.delete_session_if_empty(empty.id)
    assert index.sync() == 1
    assert index.search("chưa có bản ghi").total == 0


def test_index_and_remove_one_session(archive, indexed):
    index, session, _ = indexed
    index.remove_session(session.id)
    assert index.search("bồi thường").total == 0
    index.index_session(session.id)
    assert index.search("bồi thường").total == 1


def test_phrase_across_a_passage_cut(archive, make_session):
    session, _ = make_session("Dài", "2025-01-01", [seg(0.0, "gia đình đề nghị bồi"),
                                                     seg(200.0, "thường thỏa đáng")])
    index = open_index(archive, window=60)
    index.rebuild()
    hit = index.search('"bồi thường"').hits[0]
    assert hit.start == 2.0 and hit.snippet.endswith("<mark>bồi</mark>")


def test_segment_filter_keeps_segments_out(archive, indexed):
    index, session, _ = indexed
    sealed = open_index(archive, segment_filter=lambda s, rec, segment: segment["start"] < 5.0)
    sealed.rebuild()
    assert sealed.search("bí mật").total == 0
    assert sealed.search("bồi thường").total == 1


def test_rebuild_swaps_generations(archive, indexed):
    index, _, _ = indexed
    before = generation_dir(archive)
    assert index.rebuild() == 1
    after = generation_dir(archive)
    assert after != before and not before.exists()
    assert index.search("bồi thường").total == 1  # this thread's reader followed the swap


def test_writer_waits_then_reports_busy_while_readers_go_on(archive, indexed):
    index, session, _ = indexed
    other = open_index(archive, write_timeout=0.3)
    held, release = threading.Event(), threading.Event()

    def writer():
        with index.writing():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        held.wait(5)
        with pytest.raises(IndexBusy, match="try again"):
            other.index_session(session.id)
        with pytest.raises(IndexBusy):
            other.sync()
        assert other.search("bồi thường").total == 1  # readers are not blocked
    finally:
        release.set()
        thread.join()
    other.index_session(session.id)


def test_whoosh_lock_held_elsewhere_is_index_busy(archive, indexed):
    index, session, _ = indexed
    foreign = whoosh_index.open_dir(str(generation_dir(archive))).writer()
    try:
        busy = open_index(archive, write_timeout=0.2)
        with pytest.raises(IndexBusy):
            busy.index_session(session.id)
    finally:
        foreign.cancel()


def test_crash_mid_write_leaves_a_usable_index(archive, indexed):
    index, session, _ = indexed
    script = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from archive import open_archive
from search import open_index
index = open_index(open_archive({str(archive.home)!r}, env={{}}))
ix = index._open_ix()
writer = ix.writer()
writer.delete_by_term("session", {session.id!r})
for i in range(3000):
    writer.add_document(kind="p", session="TCD-X", words="chua luu " * 50)
writer.flush() if hasattr(writer, "flush") else None
os._exit(9)   # dies holding the lock, nothing committed
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    reopened = open_index(archive)
    reopened.check()
    assert reopened.search("bồi thường").total == 1
    assert reopened.search("chua luu").total == 0
    reopened.index_session(session.id)  # the dead writer's lock is gone


def test_corrupted_index_is_rebuilt_on_open(archive, indexed):
    for path in generation_dir(archive).iterdir():
        path.write_bytes(b"\x00garbage" * 10)
    reopened = open_index(archive)
    reopened.check()
    assert reopened.search("bồi thường").total == 1


def test_check_raises_when_the_index_is_gone(archive, indexed):
    index, _, _ = indexed
    index.check()
    for path in generation_dir(archive).iterdir():
        os.remove(path)
    fresh = open_index.__globals__["SearchIndex"](archive, ensure=False)
    with pytest.raises(ArchiveError, match="tcd reindex"):
        fresh.check()


def test_rare_phrase_among_long_posting_lists(archive, make_session):
    """The phrase reader skips to the rarest pair's passages in the long lists (postings_in)."""
    segments = [seg(i * 10.0, "có hai mươi hộ dân") for i in range(40)]
    segments.insert(25, seg(251.0, "có hai mươi lăm hộ dân"))
    make_session("Nhiều đoạn", "2025-01-01", segments)
    make_session("Đã xoá", "2025-01-02", [seg(0.0, "hai mươi lăm hộ")])
    index = open_index(archive, window=5)
    index.rebuild()
    gone = archive.catalog.list_sessions()[0]
    index.remove_session(gone.id)   # leaves deleted documents in the segment
    hits = index.search("25").hits
    assert [(h.start, h.snippet.count("<mark>")) for h in hits] == [(251.5, 1)]
    assert index.search('"hai mươi hộ"').total == 40


def test_index_of_another_format_is_rebuilt(archive, indexed):
    old = generation_dir(archive)
    (old / "FORMAT").write_text("tcd-search-0")
    reopened = open_index(archive)
    assert generation_dir(archive) != old
    assert reopened.search("bồi thường").total == 1
