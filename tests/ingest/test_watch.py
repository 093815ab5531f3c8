"""The watch folder ingests a recording once it stops growing, and never twice across restarts."""
from __future__ import annotations

import shutil
import time

from archive.store import hash_file
from ingest import pipeline
from ingest.watch import Watcher


def test_a_growing_file_waits_until_it_is_complete(archive, media, tmp_path):
    src = media("m4a")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / "Phiên 2025-04-01.m4a"
    data = src.read_bytes()
    watcher = Watcher(archive, inbox, settle=5.0)
    target.write_bytes(data[:1000])
    assert watcher.ready(clock=0.0) == []
    assert watcher.ready(clock=10.0) == [target], "unchanged for 10 s: ready"
    with open(target, "ab") as f:                        # the conference software writes more
        f.write(data[1000:])
    assert watcher.ready(clock=11.0) == [], "it grew: wait again"
    assert watcher.ready(clock=14.0) == []
    assert watcher.ready(clock=16.5) == [target]


def test_watch_ingests_once_and_survives_a_restart(archive, media, tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "2025").mkdir(parents=True)
    a = shutil.copy(media("m4a"), inbox / "2025" / "diem-cau-1.m4a")
    b = shutil.copy(media("mp3"), inbox / "diem cầu 2.mp3")
    (inbox / "ghi-chu.mkv.part").write_bytes(b"still being written")
    Watcher(archive, inbox, settle=0.2, interval=0.1).run(once=True)
    jobs = archive.catalog.list_jobs()
    assert sorted(j.source_name for j in jobs) == ["diem cầu 2.mp3", "diem-cau-1.m4a"]
    assert all(j.status == "done" for j in jobs)
    # A second watcher (a restart) finds nothing new.
    Watcher(archive, inbox, settle=0.2, interval=0.1).run(once=True)
    assert len(archive.catalog.list_jobs()) == 2
    recs = {r.original_sha256 for s in archive.catalog.list_sessions()
            for r in archive.catalog.recordings_for_session(s.id)}
    assert recs == {hash_file(a)[0], hash_file(b)[0]}
    assert len(pipeline.expand_paths([inbox])) == 2, "partial downloads are skipped"


def test_a_file_with_a_job_is_looked_up_once_until_it_changes(archive, media, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = shutil.copy(media("m4a"), inbox / "phiên.m4a")
    Watcher(archive, inbox, settle=0.2, interval=0.1).run(once=True)
    asked = []
    real = archive.catalog.job_for_source
    monkeypatch.setattr(archive.catalog, "job_for_source", lambda *a: asked.append(a) or real(*a))
    watcher = Watcher(archive, inbox, settle=5.0)   # a restart: it learns from the catalog once
    for clock in (0.0, 10.0, 20.0, 30.0):
        assert watcher.ready(clock=clock) == []
    assert len(asked) == 1, "a settled file that has a job is not looked up every round"
    with open(target, "ab") as f:                     # a new version of the file is a new question
        f.write(b"\0")
    assert watcher.ready(clock=40.0) == [] and watcher.ready(clock=50.0) == [target]
    assert len(asked) == 2
