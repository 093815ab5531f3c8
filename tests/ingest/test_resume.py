"""Kill `tcd ingest` with SIGKILL at several points; resuming finishes with nothing lost or doubled."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from archive import open_archive
from archive.store import hash_file



def tcd(home: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "tcd"), "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


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
    done = subprocess.run([str(Path(sys.executable).parent / "tcd"), "--home", str(home), "ingest", "--resume",
                           "--json"], capture_output=True, text=True)
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
