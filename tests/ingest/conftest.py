"""Media generated with real ffmpeg at test time, one short file per format the archive meets."""
from __future__ import annotations

from pathlib import Path

import ffmpeg
import pytest

VIDEO = "testsrc2=s=320x240:r=25"
TONE = "sine=f=440:r=48000"

# kind -> (file name, video codec or None, audio spec or None, extra output options)
KINDS = {
    "h264_aac_mp4": ("meeting.mp4", "libx264", "aac", {}),
    "vp9_opus_webm": ("meeting.webm", "libvpx-vp9", "libopus", {"deadline": "realtime", "cpu-used": 8}),
    "mkv_flac": ("meeting.mkv", "libx264", "flac", {}),
    "wmv": ("meeting.wmv", "wmv2", "wmav2", {}),
    "mp3": ("meeting.mp3", None, "libmp3lame", {}),
    "m4a": ("meeting.m4a", None, "aac", {}),
    "wav_mulaw_8k": ("meeting.wav", None, "pcm_mulaw", {"ar": 8000, "ac": 1}),
    "aac_51": ("surround.m4a", None, "aac", {"ac": 6}),
    "video_no_sound": ("silent-video.mp4", "libx264", None, {}),
    "silence": ("silence.wav", None, "pcm_s16le", {"silent": True}),
}


def make_media(folder: Path, kind: str, seconds: float = 3.0, name: str | None = None) -> Path:
    filename, vcodec, acodec, extra = KINDS[kind]
    extra = dict(extra)
    out = folder / (name or filename)
    streams = []
    if vcodec:
        streams.append(ffmpeg.input(f"{VIDEO}:d={seconds}", f="lavfi").video)
    if acodec:
        source = "anullsrc=r=48000:cl=mono" if extra.pop("silent", False) else TONE
        streams.append(ffmpeg.input(f"{source}:d={seconds}" if "sine" in source else source,
                                    f="lavfi", t=seconds).audio)
    options = dict(extra)
    if vcodec:
        options.update(vcodec=vcodec, pix_fmt="yuv420p")
    if acodec:
        options["acodec"] = acodec
    ffmpeg.output(*streams, str(out), t=seconds, **options).overwrite_output().run(quiet=True)
    return out


@pytest.fixture
def media(tmp_path):
    """`media(kind, seconds=3, name=None)` writes a generated file into a fresh folder."""
    folder = tmp_path / "incoming"
    folder.mkdir(exist_ok=True)
    return lambda kind, seconds=3.0, name=None: make_media(folder, kind, seconds, name)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Files that look like media by their names and are not."""
    folder = tmp_path_factory.mktemp("bad")
    good = make_media(folder, "h264_aac_mp4", 6.0, "good.mp4")
    data = good.read_bytes()
    files = {
        "empty": (folder / "empty.mp4", b""),
        "random_bytes": (folder / "random.mp3", bytes(__import__("random").Random(42).randbytes(100_000))),
        "text_as_mkv": (folder / "notes.mkv", "Biên bản tiếp công dân\n".encode() * 50),
        "truncated_mp4": (folder / "truncated.mp4", data[: len(data) // 2]),
        "no_index_atom": (folder / "no-moov.mp4", data.replace(b"moov", b"xxxx", 1)),
    }
    for path, content in files.values():
        path.write_bytes(content)
    png = folder / "slate.png"
    ffmpeg.input("testsrc2=s=64x64", f="lavfi").output(str(png), vframes=1).overwrite_output().run(quiet=True)
    files["png_as_mp4"] = (folder / "slate.mp4", png.read_bytes())
    files["png_as_mp4"][0].write_bytes(png.read_bytes())
    return {kind: path for kind, (path, _) in files.items()}
