"""The ingest pipeline end to end with real ffmpeg: formats, bad input, duplicates, full disks."""
from __future__ import annotations

import errno
import json
import os
import subprocess

import ffmpeg
import pytest

from archive import open_archive
from archive.store import hash_file
from ingest import pipeline

FORMATS = {  # kind -> (access mime, remuxed, audio channels of the access copy)
    "h264_aac_mp4": ("video/mp4", True, 1),
    "vp9_opus_webm": ("video/mp4", False, 1),
    "mkv_flac": ("video/mp4", False, 1),
    "wmv": ("video/mp4", False, 1),
    "mp3": ("audio/mp4", False, 1),
    "m4a": ("audio/mp4", True, 1),
    "wav_mulaw_8k": ("audio/mp4", False, 1),
    "aac_51": ("audio/mp4", True, 6),
    "video_no_sound": ("video/mp4", True, None),
    "silence": ("audio/mp4", False, 1),
}


def access_streams(archive, rec):
    with archive.store.materialize(rec.access_sha256) as path:
        return ffmpeg.probe(str(path))


@pytest.mark.parametrize("kind", FORMATS)
def test_each_format_becomes_a_playable_recording(archive, media, kind):
    mime, remuxed, channels = FORMATS[kind]
    src = media(kind)
    [outcome] = pipeline.ingest_paths(archive, [src], session_meta={"title": "Phiên", "held_on": "2025-03-14"})
    assert outcome.status == "done", outcome.message
    rec = archive.catalog.get_recording(outcome.recording_id)
    # The original is kept bit-exact.
    assert rec.original_sha256 == hash_file(src)[0]
    assert archive.store.rehash(rec.original_sha256) == rec.original_sha256
    assert rec.access_mime == mime and rec.duration == pytest.approx(3.0, abs=0.2)
    probe = access_streams(archive, rec)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    if mime == "video/mp4":
        assert codecs["video"]["codec_name"] == "h264"
    if channels is None:
        assert "audio" not in codecs and not rec.has_audio
    else:
        assert codecs["audio"]["codec_name"] == "aac" and codecs["audio"]["channels"] == channels
    # faststart: the index atom comes before the media data.
    with archive.store.open(rec.access_sha256) as f:
        head = f.read(200_000)
    moov, mdat = head.find(b"moov"), head.find(b"mdat")
    assert moov >= 0 and (mdat == -1 or moov < mdat), (moov, mdat)
    assert not list((archive.settings.staging_dir / str(outcome.job_id)).glob("*")), "staging is cleaned up"


def test_every_audio_track_is_kept(archive, tmp_path):
    src = tmp_path / "two-tracks.mkv"
    v = ffmpeg.input("testsrc2=s=160x120:r=25:d=2", f="lavfi").video
    a1 = ffmpeg.input("sine=f=300:d=2", f="lavfi").audio
    a2 = ffmpeg.input("sine=f=900:d=2", f="lavfi").audio
    ffmpeg.output(v, a1, a2, str(src), vcodec="libx264", acodec="flac").overwrite_output().run(quiet=True)
    [outcome] = pipeline.ingest_paths(archive, [src])
    rec = archive.catalog.get_recording(outcome.recording_id)
    audio = [s for s in access_streams(archive, rec)["streams"] if s["codec_type"] == "audio"]
    assert len(audio) == 2


def test_bad_files_are_refused_kept_in_quarantine_and_the_rest_ingests(archive, media, bad_files):
    good = media("m4a")
    outcomes = pipeline.ingest_paths(archive, [*bad_files.values(), good])
    by_name = {o.name: o for o in outcomes}
    assert by_name[good.name].status == "done"
    for kind, path in bad_files.items():
        o = by_name[path.name]
        assert o.status == "refused", (kind, o)
        assert o.message.endswith(".") and "\n" not in o.message
        job = archive.catalog.get_job(o.job_id)
        kept = archive.settings.quarantine_dir / f"{job.id}-{path.name}"
        assert kept.read_bytes() == path.read_bytes(), kind
        note = json.loads(kept.with_name(kept.name + ".json").read_text())
        assert note["reason"] == o.message and note["source"] == str(path.resolve())
        assert path.exists(), "the source is never touched"
    # Sessions made only of refused files are not left behind.
    assert [s.id for s in archive.catalog.list_sessions()] == [by_name[good.name].session_id]


def test_reasons_say_what_is_wrong(archive, bad_files):
    outcomes = {o.name: o.message for o in pipeline.ingest_paths(archive, bad_files.values())}
    assert "empty" in outcomes["empty.mp4"]
    assert "image" in outcomes["slate.mp4"]
    assert "cut short" in outcomes["truncated.mp4"] or "damaged" in outcomes["truncated.mp4"]


def test_same_original_twice_under_any_name_is_one_recording(archive, media, tmp_path):
    src = media("h264_aac_mp4")
    copy = tmp_path / "bản sao (1).mp4"
    copy.write_bytes(src.read_bytes())
    first, second = pipeline.ingest_paths(archive, [src, copy], session_meta={"title": "T", "held_on": "2025-01-02"})
    assert first.status == "done" and second.status == "duplicate"
    assert second.recording_id == first.recording_id
    assert len(archive.catalog.recordings_for_session(first.session_id)) == 1


def test_vietnamese_names_and_folders(archive, media, tmp_path):
    src = media("mp3", name="Phiên tiếp dân – Đắk Lắk 14-03-2025.mp3")
    [o] = pipeline.ingest_paths(archive, [src.parent])
    rec = archive.catalog.get_recording(o.recording_id)
    session = archive.catalog.get_session(o.session_id)
    assert rec.original_name == "Phiên tiếp dân – Đắk Lắk 14-03-2025.mp3"
    assert session.held_on == "2025-03-14" and "Đắk Lắk" in session.title


def test_a_crash_in_a_stage_fails_that_job_only_and_keeps_the_original(archive, media, monkeypatch):
    first, second = media("h264_aac_mp4"), media("mp3")
    real = pipeline.transcode

    def transcode(ctx):  # a bug, for the first file only
        if ctx.job.source_name == first.name:
            raise KeyError("codec_name")
        return real(ctx)
    transcode.__name__ = "transcode"
    runner = pipeline.Runner(archive)
    runner.stages = [transcode if s is real else s for s in runner.stages]
    crashed, fine = pipeline.ingest_paths(archive, [first, second], runner=runner)
    assert (crashed.status, fine.status) == ("failed", "done")
    assert crashed.message == "Unexpected error in stage transcode: KeyError: 'codec_name'"
    assert archive.store.rehash(hash_file(first)[0]) == hash_file(first)[0]  # preserved before the crash


def test_disk_full_while_storing_loses_nothing_and_resumes(archive, media, monkeypatch):
    src = media("h264_aac_mp4")
    from archive import store as store_module
    real = store_module.copy_hashing

    def full_disk(src_f, dst_f, progress=None):  # the store's copy; staging has its own
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "copy_hashing", full_disk)
    [o] = pipeline.ingest_paths(archive, [src])
    assert o.status == "failed" and "full" in o.message
    assert list(archive.store.keys()) == [], "no half-written object is visible"
    assert not list((archive.settings.objects_dir / ".tmp").iterdir())
    staged = list((archive.settings.staging_dir / str(o.job_id)).glob("original*"))
    assert staged and staged[0].read_bytes() == src.read_bytes(), "the original stays in staging"

    monkeypatch.setattr(store_module, "copy_hashing", real)
    [again] = pipeline.resume(archive, pipeline.Runner(archive))
    assert again.status == "done" and again.job_id == o.job_id
    assert archive.store.rehash(hash_file(src)[0]) == hash_file(src)[0]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MB file system (tmpfs); needs root, as on the CI machine."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    assert mounted.returncode == 0, f"root could not mount a tmpfs: {mounted.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_then_more_space(tiny_disk, media):
    src = media("h264_aac_mp4", seconds=30)   # about 1.3 MB: staging fits, the store does not
    assert 1_000_000 < src.stat().st_size < 2_000_000
    archive = open_archive(tiny_disk / "home", env={})
    [o] = pipeline.ingest_paths(archive, [src])
    assert o.status == "failed" and "full" in o.message, o
    assert list(archive.store.keys()) == []
    subprocess.run(["mount", "-o", "remount,size=20m", str(tiny_disk)], check=True)
    [again] = pipeline.resume(archive, pipeline.Runner(archive))
    assert again.status == "done", again.message
    rec = archive.catalog.get_recording(again.recording_id)
    assert archive.store.rehash(rec.original_sha256) == hash_file(src)[0]
    archive.catalog.close()


def test_an_upload_in_staging_is_moved_in_not_copied(archive, media, monkeypatch):
    upload = archive.settings.staging_dir / "uploads" / "u1" / "Phiên tải lên.mp4"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(media("h264_aac_mp4").read_bytes())
    sha = hash_file(upload)[0]
    monkeypatch.setattr(pipeline, "copy_hashing", lambda *a: pytest.fail("an upload was copied"))
    [o] = pipeline.ingest_paths(archive, [upload], take=True)
    assert o.status == "done", o.message
    assert not upload.exists(), "moved into the job, then cleaned with it"
    assert archive.catalog.get_recording(o.recording_id).original_sha256 == sha
    assert archive.store.rehash(sha) == sha


def test_an_upload_taken_in_by_a_killed_run_is_still_received(archive, media):
    upload = archive.settings.staging_dir / "uploads" / "u2" / "a.mp3"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(media("mp3").read_bytes())
    sha = hash_file(upload)[0]
    [job] = pipeline.create_jobs(archive, [upload], take=True)
    ctx = pipeline.JobContext(archive, job.id, archive.settings.staging_dir / str(job.id))
    ctx.workdir.mkdir(parents=True)
    os.replace(upload, ctx.staged)                 # the move happened, the kill came before the hash
    [o] = pipeline.resume(archive, pipeline.Runner(archive))
    assert o.status == "done", o.message
    assert archive.catalog.get_recording(o.recording_id).original_sha256 == sha
