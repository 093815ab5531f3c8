"""A generated sample session: Vietnamese speech from espeak-ng and an ffmpeg slate video.

The demo (`web/demo.py`) and the tests use it. Two bridge points record the same conversation:
the central point as an H.264/AAC MP4 with a slate, a delegate point as a VP9/Opus WebM. The
generator knows the script it spoke, so it also returns a human transcript (segments with times)
to import.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import ffmpeg

from archive.errors import ArchiveError

SAMPLE_RATE = 22050
PAUSE = 0.7  # seconds of silence between utterances

CHAIR, COMPLAINANT = "Chủ trì", "Công dân Nguyễn Văn Đức"
VOICES = {CHAIR: "vi", COMPLAINANT: "vi-vn-x-south"}

SCRIPT = [
    (CHAIR, "Xin chào các đại biểu. Hôm nay là phiên tiếp công dân trực tuyến của Ủy ban nhân dân tỉnh."),
    (CHAIR, "Mời công dân trình bày nội dung khiếu nại về đất đai."),
    (COMPLAINANT, "Tôi là Nguyễn Văn Đức, ở xã Hòa Bình. Tôi khiếu nại việc thu hồi đất đai "
                  "năm hai nghìn không trăm hai mươi lăm."),
    (COMPLAINANT, "Gia đình tôi chưa nhận được tiền bồi thường một trăm hai mươi ba triệu đồng."),
    (CHAIR, "Đề nghị Sở Tài nguyên và Môi trường kiểm tra, trả lời công dân trong mười lăm ngày."),
    (COMPLAINANT, "Tôi đề nghị được đối thoại trực tiếp với lãnh đạo tỉnh."),
    (CHAIR, "Cảm ơn công dân. Phiên tiếp công dân kết thúc."),
]

SESSION_META = {
    "title": "Tiếp công dân định kỳ tháng 3 — khiếu nại thu hồi đất xã Hòa Bình",
    "held_on": "2025-03-14",
    "case_code": "KN-2025-031",
    "category": "a",
    "chair": "Phó Chủ tịch UBND tỉnh",
    "central_point": "Trụ sở Ban Tiếp công dân tỉnh",
    "delegate_points": ["UBND xã Hòa Bình"],
    "complainants": ["Nguyễn Văn Đức"],
}


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise ArchiveError(f"'{name}' is not installed; install the Debian package '{package}' "
                           f"(apt-get install {package}).")
    return path


def speak(text: str, voice: str, out: Path, speed: int = 150) -> Path:
    """Speak `text` with espeak-ng into a 22,050 Hz mono WAV."""
    subprocess.run([require_tool("espeak-ng", "espeak-ng"), "-v", voice, "-s", str(speed),
                    "-w", str(out), text], check=True, capture_output=True)
    return out


def speak_script(script: list[tuple[str, str]], out: Path, voices: dict | None = None,
                 pause: float = PAUSE) -> list[dict]:
    """Speak each line in turn into one WAV; return the segments (start, end, speaker, text)."""
    voices = voices or VOICES
    segments, t = [], pause
    silence = b"\0\0" * int(SAMPLE_RATE * pause)
    with tempfile.TemporaryDirectory() as tmp, wave.open(str(out), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(SAMPLE_RATE)
        dst.writeframes(silence)
        for i, (speaker, text) in enumerate(script):
            part = speak(text, voices.get(speaker, "vi"), Path(tmp) / f"{i}.wav")
            with wave.open(str(part), "rb") as src:
                frames = src.readframes(src.getnframes())
                length = src.getnframes() / src.getframerate()
            dst.writeframes(frames + silence)
            segments.append({"start": round(t, 3), "end": round(t + length, 3), "speaker": speaker,
                             "text": text, "words": []})
            t += length + pause
    return segments


def make_video(audio: Path, out: Path, title: str, vcodec: str = "libx264", acodec: str = "aac",
               size: str = "640x360") -> Path:
    """A slate video (title, running clock) over `audio`, as long as the audio."""
    duration = float(ffmpeg.probe(str(audio))["format"]["duration"])
    slate = ffmpeg.input(f"color=c=0x1f3a5f:s={size}:r=25:d={duration:.3f}", f="lavfi")
    # ffmpeg-python escapes drawtext's text (so no %{pts} expansion): a running timecode instead.
    slate = slate.drawtext(text=title, fontcolor="white", fontsize=24, x="(w-text_w)/2", y="h/3")
    slate = slate.drawtext(timecode="00:00:00:00", rate=25, fontcolor="white", fontsize=32,
                           x="(w-text_w)/2", y="h/2")
    sound = ffmpeg.input(str(audio)).audio
    extra = {"pix_fmt": "yuv420p"}
    if vcodec == "libx264":
        extra.update(preset="veryfast", movflags="+faststart")
    (ffmpeg.output(slate, sound, str(out), vcodec=vcodec, acodec=acodec, shortest=None, **extra)
     .overwrite_output().run(quiet=True))
    return out


def make_sample(folder: Path) -> dict:
    """Write the sample recordings into `folder`; returns their paths, metadata and transcript."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = folder / "speech.wav"
    segments = speak_script(SCRIPT, speech)
    central = make_video(speech, folder / "Phiên TCD 14-03-2025 – điểm cầu trung tâm.mp4",
                         "Tiếp công dân trực tuyến")
    delegate = make_video(speech, folder / "xa-hoa-binh_diem-cau.webm", "UBND xã Hòa Bình",
                          vcodec="libvpx-vp9", acodec="libopus", size="320x180")
    speech.unlink()
    return {"meta": SESSION_META, "segments": segments,
            "recordings": [(central, SESSION_META["central_point"]),
                           (delegate, SESSION_META["delegate_points"][0])]}
