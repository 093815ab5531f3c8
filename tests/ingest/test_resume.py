"""Kill `tcd ingest` with SIGKILL at several points; resuming finishes with nothing lost or doubled."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from archive import open_archive
from archive.store import hash_file

from ..helpers import TCD, tcd_process



def tcd(home: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([TCD, "--home", str(home), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kwargs)


def wait_until_running(home: Path, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """The kill delays count from the moment a job runs, not from the start of Python."""
    archive = open_archive(home, env={})
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if any(j.status == "running" for j in archive.catalog.list_jobs()):
                return
            assert time.monotonic() < deadline, f"no job was running after {timeout:.0f} s"
            time.sleep(0.02)
    finally:
        archive.catalog.close()


def test_sigkill_at_several_points_then_resume(home, media):
    src = media("vp9_opus_webm", seconds=12)   # needs a real transcode, so there is time to be killed
    stages_seen = []
    for delay in (0.05, 0.5, 1.2, 2.2):
        args = ["ingest", "--resume"] if stages_seen else ["ingest", "--title", "Phiên bị ngắt", "--", str(src)]
        proc = tcd(home, *args)
        wait_until_running(home, proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        archive = open_archive(home, env={})
        jobs = archive.catalog.list_jobs()
        stages_seen.append((jobs[0].stage, jobs[0].status) if jobs else ("none", "none"))
        # Whatever was stored is whole: every visible object hashes to its name.
        for key in archive.store.keys():
            assert archive.store.rehash(key) == key
        archive.catalog.close()
    done = tcd_process(home, "ingest", "--resume", "--json")
    assert done.returncode == 0, (done.stdout, done.stderr, stages_seen)
    archive = open_archive(home, env={})
    jobs = archive.catalog.list_jobs()
    assert [j.status for j in jobs] == ["done"], stages_seen
    [session] = archive.catalog.list_sessions()
    [rec] = archive.catalog.recordings_for_session(session.id)
    assert rec.original_sha256 == hash_file(src)[0] and rec.access_sha256
    assert sorted(archive.store.keys()) == sorted(o["sha256"] for o in archive.catalog.list_objects())
    assert not any((home / "staging").glob("[0-9]*")), "staging is cleaned up"
    stages = {s for s, _ in stages_seen} - {"none"}
    assert len(stages) >= 2, f"the kills should land in different stages: {stages_seen}"


class Killed(BaseException):
    """Stands for SIGKILL at one exact point: the runner cannot catch it and nothing after it runs."""


def kill_after_storing_the_access_copy(archive, src, monkeypatch, killed_in: str) -> str:
    """Ingest `src` until the access copy is stored and the run dies at `killed_in`; the copy's key."""
    from ingest import pipeline
    real_copy, real_call = pipeline.media.make_access_copy, getattr(archive.catalog, killed_in)

    def other_bytes(source, out, info, progress):  # an encoder run again need not give the same bytes
        plan = real_copy(source, out, info, progress)
        with open(out, "ab") as f:
            f.write(b"\0")
        return plan

    def kill_for_access(*args, **kwargs):
        if killed_in == "set_access_copy" or args[2] == "access":
            raise Killed
        return real_call(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline.media, "make_access_copy", other_bytes)
        patch.setattr(archive.catalog, killed_in, kill_for_access)
        with pytest.raises(Killed):
            pipeline.ingest_paths(archive, [src])
    [first] = set(archive.store.keys()) - {hash_file(src)[0]}   # stored before the kill
    return first


@pytest.mark.parametrize("killed_in", ["add_object", "set_access_copy"])
def test_a_kill_after_storing_the_access_copy_leaves_no_stray_object(archive, media, monkeypatch, killed_in):
    from ingest import pipeline
    first = kill_after_storing_the_access_copy(archive, media("vp9_opus_webm"), monkeypatch, killed_in)
    [done] = pipeline.resume(archive, pipeline.Runner(archive))
    assert done.status == "done", done.message
    keys = sorted(archive.store.keys())
    assert keys == sorted(o["sha256"] for o in archive.catalog.list_objects())
    assert len(keys) == 2 and first not in keys, "the stray first copy is gone, the new one kept"
    [rec] = archive.catalog.recordings_for_session(done.session_id)
    assert archive.store.rehash(rec.access_sha256) == rec.access_sha256


def test_a_stray_the_store_will_not_delete_does_not_stop_the_ingest(archive, media, monkeypatch):
    from archive.errors import StorageError
    from archive.fixity import verify
    from ingest import pipeline
    first = kill_after_storing_the_access_copy(archive, media("vp9_opus_webm"), monkeypatch, "add_object")

    def locked(sha256):   # a bucket whose default retention locks every new object
        raise StorageError(f"The S3 server refused to delete object {sha256[:12]}…: it is under retention.")
    monkeypatch.setattr(archive.store, "delete", locked)
    [done] = pipeline.resume(archive, pipeline.Runner(archive))
    assert done.status == "done", done.message
    assert verify(archive).strays == [first], "left in the store, and the next fixity run names it"
