"""The S3 server stops in the middle of an ingest (while the original is being uploaded).

The job waits and retries with backoff; the original stays in staging until it is stored and
checked; `tcd jobs` says what the job waits for; once the server is back (during the backoff,
or later with `tcd ingest --resume`) the ingest finishes with nothing lost and nothing stored
twice. Runs against a SeaweedFS of its own, which it kills and starts again on the same ports
and data."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import ffmpeg

from archive import open_archive
from archive.store import hash_file
from ingest import pipeline

from ..helpers import tcd


def long_recording(folder: Path, name: str, seconds: float) -> Path:
    """A WAV of seeded noise: large enough (about 1 MB a second) to need several 5 MiB parts."""
    out = folder / name
    (ffmpeg.input(f"anoisesrc=d={seconds}:c=pink:r=48000:a=0.3:seed=42", f="lavfi")
     .output(str(out), acodec="pcm_s16le", ac=2, ar=48000).overwrite_output().run(quiet=True))
    return out


def archive_on_a_new_bucket(own_seaweed, home: Path):
    """The environment that points `tcd` at a new bucket (parts of 5 MB, so that a recording takes
    several) and an archive at `home` opened with it."""
    env = {"TCD_STORAGE": own_seaweed.url(own_seaweed.make_bucket(), secret=False) + "&part_mb=5",
           "TCD_S3_SECRET": own_seaweed.secret_key, "TCD_HOME": None}
    return env, open_archive(home, env=env)


class StopDuringUpload:
    """A progress display that kills the server once the first part of the original is read."""

    def __init__(self, server, then=None):
        self.server, self.then, self.stopped = server, then, threading.Event()

    def __call__(self, job, stage):
        def display(fraction: float) -> None:
            if stage == "preserve" and 0 < fraction < 1 and not self.stopped.is_set():
                self.stopped.set()
                self.server.stop()
                if self.then:
                    self.then()
        return display


def assert_stored_once(arch, src) -> None:
    jobs = arch.catalog.list_jobs()
    assert [j.status for j in jobs] == ["done"], [(j.status, j.message) for j in jobs]
    [session] = arch.catalog.list_sessions()
    [rec] = arch.catalog.recordings_for_session(session.id)
    assert rec.original_sha256 == hash_file(src)[0] and rec.access_sha256
    objects = arch.catalog.list_objects()
    assert sorted(arch.store.keys()) == sorted(o["sha256"] for o in objects)
    assert len(objects) == 2, "the original and its access copy, once each"
    with arch.store.materialize(rec.original_sha256) as path:
        assert path.read_bytes() == src.read_bytes()
    assert not any(arch.settings.staging_dir.glob("[0-9]*")), "staging is cleaned up"


def test_the_job_waits_and_resume_finishes_after_the_server_returns(own_seaweed, tmp_path):
    home = tmp_path / "tcd-data"
    env, arch = archive_on_a_new_bucket(own_seaweed, home)
    src = long_recording(tmp_path, "phien-mat-ket-noi.wav", 40)
    runner = pipeline.Runner(arch, StopDuringUpload(own_seaweed), max_wait=3.0, backoff=(0.5, 1.0))
    [outcome] = pipeline.ingest_paths(arch, [src], session_meta={"title": "Phiên mất kết nối",
                                                                 "held_on": "2025-03-14"}, runner=runner)
    assert outcome.status == "waiting"
    job = arch.catalog.get_job(outcome.job_id)
    assert job.stage == "preserve"
    assert "Waiting for the object store" in job.message and "cannot be reached" in job.message
    staged = pipeline.JobContext(arch, job.id, home / "staging" / str(job.id)).staged
    assert hash_file(staged)[0] == hash_file(src)[0], "the original stays in staging until stored"
    assert arch.catalog.list_objects() == []

    jobs = tcd(home, "jobs", env=env)
    assert jobs.exit_code == 0
    assert f"#{job.id:<5} waiting" in jobs.output and "Waiting for the object store" in jobs.output

    own_seaweed.start()
    result = tcd(home, "ingest", "--resume", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert [o["status"] for o in json.loads(result.output)] == ["done"]
    assert_stored_once(arch, src)
    arch.catalog.close()


def test_the_job_retries_on_its_own_when_the_server_returns_during_the_backoff(own_seaweed, tmp_path):
    _, arch = archive_on_a_new_bucket(own_seaweed, tmp_path / "tcd-data")
    src = long_recording(tmp_path, "phien-gian-doan.wav", 30)
    seen_while_down = []

    def come_back_later():
        def restart():
            job = arch.catalog.list_jobs()[0]
            seen_while_down.append((job.status, job.message))
            own_seaweed.start()
            arch.catalog.close()  # this thread's connection
        threading.Timer(3.0, restart).start()

    stopper = StopDuringUpload(own_seaweed, then=come_back_later)
    runner = pipeline.Runner(arch, stopper, max_wait=120.0, backoff=(0.5, 2.0))
    [outcome] = pipeline.ingest_paths(arch, [src], session_meta={"title": "Phiên gián đoạn",
                                                                 "held_on": "2025-03-15"}, runner=runner)
    assert stopper.stopped.is_set()
    assert outcome.status == "done", outcome.message
    [(status, message)] = seen_while_down
    assert status == "waiting" and "next try in" in message
    assert_stored_once(arch, src)
    arch.catalog.close()
