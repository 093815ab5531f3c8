import pytest

from archive.errors import Conflict, InvalidInput, NotFound


def test_session_ids_count_per_year(archive):
    a = archive.catalog.create_session({"title": "Phiên một", "held_on": "2025-03-04"})
    b = archive.catalog.create_session({"title": "Phiên hai", "held_on": "2025-05-01"})
    c = archive.catalog.create_session({"title": "Phiên ba", "held_on": "2026-01-09"})
    assert (a.id, b.id, c.id) == ("TCD-2025-0001", "TCD-2025-0002", "TCD-2026-0001")


def test_session_lists_from_semicolons_and_bad_date(archive):
    s = archive.catalog.create_session({"title": "T", "held_on": "2025-03-04",
                                        "complainants": "Nguyễn Văn A; Trần Thị B"})
    assert s.complainants == ["Nguyễn Văn A", "Trần Thị B"]
    with pytest.raises(InvalidInput):
        archive.catalog.create_session({"title": "T", "held_on": "04/03/2025"})
    with pytest.raises(NotFound):
        archive.catalog.get_session("TCD-1999-0001")


def test_transcript_versions_and_conflict(archive):
    cat = archive.catalog
    s = cat.create_session({"title": "T", "held_on": "2025-03-04"})
    sha = "ab" * 32
    cat.add_object(sha, 10, "original")
    rec = cat.add_recording(session_id=s.id, original_sha256=sha, original_name="a.mp4")
    assert cat.add_recording(session_id=s.id, original_sha256=sha, original_name="b.mp4").id == rec.id
    v1 = cat.add_transcript(recording_id=rec.id, segments=[], kind="machine", author="vosk", engine="vosk")
    v2 = cat.add_transcript(recording_id=rec.id, segments=[{"text": "x"}], kind="human", author="an",
                            based_on=1)
    v3 = cat.add_transcript(recording_id=rec.id, segments=[], kind="machine", author="vosk")
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert cat.current_transcript(rec.id).version == 2  # a person's version stays current
    with pytest.raises(Conflict):  # edited from v1, but v2 is current now
        cat.add_transcript(recording_id=rec.id, segments=[], kind="human", author="binh", based_on=1)
    # A machine run saved meanwhile (v3) does not make an edit of the current v2 conflict.
    v4 = cat.add_transcript(recording_id=rec.id, segments=[], kind="human", author="binh", based_on=2)
    assert v4.version == 4 and cat.current_transcript(rec.id).version == 4
    with pytest.raises(Conflict):  # a second person who also started from v2
        cat.add_transcript(recording_id=rec.id, segments=[], kind="human", author="chi", based_on=2)


def test_audit_entries_are_chained(archive):
    first = archive.audit("an", "login")
    second = archive.audit("an", "view", "TCD-2025-0001", x=1)
    assert second["prev_hash"] == first["hash"] and first["prev_hash"] == "0" * 64


def test_secret_key_is_private(archive):
    archive.secret_key()
    assert (archive.home / "secret_key").stat().st_mode & 0o777 == 0o600


def test_processes_starting_together_all_get_the_one_secret(archive):
    """Workers of `tcd serve` on a fresh folder: each reads the secret that won, none a half one."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    keys = context.Queue()
    go = context.Event()

    def start():
        go.wait(30)
        keys.put(archive.secret_key())

    workers = [context.Process(target=start) for _ in range(6)]
    for w in workers:
        w.start()
    go.set()
    got = {keys.get(timeout=30) for _ in workers}
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    assert got == {archive.secret_key()} and len(archive.secret_key()) == 64
    assert sorted(p.name for p in archive.home.iterdir() if p.name.startswith("secret_key")) == ["secret_key"]


def test_bridge_points_and_newest_sessions(archive):
    catalog = archive.catalog
    assert catalog.bridge_points() == [] and catalog.list_sessions(limit=5) == []
    catalog.create_session({"title": "Một", "held_on": "2025-01-02", "central_point": "Ban Tiếp công dân tỉnh",
                            "delegate_points": ["UBND xã Hòa Bình", "UBND huyện Đông Anh"]})
    catalog.create_session({"title": "Hai", "held_on": "2025-03-04", "central_point": "Ban Tiếp công dân tỉnh",
                            "delegate_points": ["UBND xã Hòa Bình", ""]})
    catalog.create_session({"title": "Ba", "held_on": "2024-12-31"})
    assert catalog.bridge_points() == sorted(["Ban Tiếp công dân tỉnh", "UBND huyện Đông Anh", "UBND xã Hòa Bình"])
    assert [s.title for s in catalog.list_sessions(limit=2)] == ["Hai", "Một"]
    assert len(catalog.list_sessions()) == 3


def test_versions_listed_without_their_segments(archive):
    cat = archive.catalog
    s = cat.create_session({"title": "Phiên", "held_on": "2025-01-02"})
    cat.add_object("a" * 64, 10, "original")
    rec = cat.add_recording(session_id=s.id, original_sha256="a" * 64, original_name="a.mp4")
    seg = {"start": 0.0, "end": 1.0, "speaker": "", "text": "đất đai", "words": []}
    cat.add_transcript(recording_id=rec.id, segments=[seg], kind="machine", author="vosk", model="m")
    cat.add_transcript(recording_id=rec.id, segments=[seg, seg], kind="human", author="hà")
    full = cat.transcripts_for_recording(rec.id)
    light = cat.transcripts_for_recording(rec.id, with_segments=False)
    assert [len(t.segments) for t in full] == [1, 2] and [t.segments for t in light] == [[], []]
    assert [t.to_dict(with_segments=False) for t in light] == [t.to_dict(with_segments=False) for t in full]


def test_write_atomic_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    import os
    import stat

    from archive import store
    path = tmp_path / "tcd.toml"
    store.write_atomic(path, "cũ\n".encode())
    store.write_atomic(path, b"secret\n", mode=0o600)
    assert path.read_bytes() == b"secret\n" and stat.S_IMODE(path.stat().st_mode) == 0o600

    def crash(src, dst):  # the machine stops between writing the new file and renaming it
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.write_atomic(path, b"half")
    assert path.read_bytes() == b"secret\n"  # the old file, whole
    assert (tmp_path / ".tcd.toml.part").exists()  # what the crash left behind
    monkeypatch.undo()
    store.write_atomic(path, b"new\n")  # the leftover temporary file is no obstacle
    assert path.read_bytes() == b"new\n" and [p.name for p in tmp_path.iterdir()] == ["tcd.toml"]
