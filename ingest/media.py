"""The one wrapper around ffmpeg: probe a file, refuse what is not usable media, make the access
copy and the 16 kHz mono audio for speech recognition.

ffmpeg is driven through `ffmpeg-python` (argument lists, never a shell string). When ffmpeg is
missing the error says which package to install.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ffmpeg

from archive.errors import ArchiveError, InvalidMedia

# Formats ffprobe reports for still images, text and other things that are not recordings.
NOT_RECORDINGS = {"image2", "tty", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe",
                  "svg_pipe", "tiff_pipe", "apng", "lrc", "srt", "webvtt", "ass", "mpl2"}
STILL_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "svg", "apng"}
CHECK_SECONDS = 2.0  # decoded at the start and the end of a file to find corrupt or cut files

ASR_RATE = 16000


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration: float
    video_codec: str | None
    audio_codecs: tuple[str, ...]
    width: int = 0
    height: int = 0
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)

    def summary(self) -> dict:
        return {"format": self.format_name, "duration": self.duration, "video": self.video_codec,
                "audio": list(self.audio_codecs), "width": self.width, "height": self.height,
                "streams": [{k: s.get(k) for k in ("index", "codec_type", "codec_name", "channels",
                                                   "sample_rate", "width", "height")}
                            for s in self.raw.get("streams", [])]}


def require_ffmpeg() -> None:
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            raise ArchiveError(f"'{tool}' is not installed; install the Debian package 'ffmpeg' "
                               "(apt-get install ffmpeg).")


def _first_error(exc: ffmpeg.Error) -> str:
    lines = [l.strip() for l in (exc.stderr or b"").decode("utf-8", "replace").splitlines() if l.strip()]
    # ffmpeg prefixes messages with the file name or "[demuxer @ 0x…]"; the user needs the reason.
    return lines[-1].split("] ")[-1].split(": ")[-1] if lines else "ffmpeg gave no reason"


def probe(path: Path) -> MediaInfo:
    """What the file holds; raises InvalidMedia with the reason when it is not a usable recording."""
    require_ffmpeg()
    path = Path(path).resolve()
    if path.stat().st_size == 0:
        raise InvalidMedia("The file is empty.")
    try:
        raw = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        if b"moov atom not found" in (exc.stderr or b""):
            raise InvalidMedia("It is damaged or cut short: its MP4 index (the moov atom) is missing.") from None
        raise InvalidMedia(f"ffmpeg cannot read it as audio or video ({_first_error(exc)}).") from None
    fmt = raw.get("format", {})
    format_name = fmt.get("format_name", "")
    if format_name in NOT_RECORDINGS or format_name.endswith("_pipe"):
        raise InvalidMedia(f"It is a still image or text ({format_name}), not a recording.")
    video = [s for s in raw.get("streams", []) if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic") and s.get("codec_name") not in STILL_CODECS]
    audio = [s for s in raw.get("streams", []) if s.get("codec_type") == "audio"]
    if not video and not audio:
        raise InvalidMedia("It holds no audio or video stream.")
    try:
        duration = float(fmt.get("duration") or max(float(s.get("duration") or 0) for s in video + audio))
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise InvalidMedia("It has no duration that ffmpeg can read; the file is probably damaged.")
    _check_decodes(path, duration)
    v = video[0] if video else {}
    return MediaInfo(format_name=format_name, duration=duration,
                     video_codec=v.get("codec_name") if video else None,
                     audio_codecs=tuple(s.get("codec_name", "") for s in audio),
                     width=int(v.get("width") or 0), height=int(v.get("height") or 0), raw=raw)


def _check_decodes(path: Path, duration: float) -> None:
    """Decode a little at the start and at the end: a cut or corrupt file fails here, cheaply.
    A file cut short often decodes its end silently to nothing, so frames are counted too."""
    starts = [0.0] if duration <= 2 * CHECK_SECONDS else [0.0, duration - CHECK_SECONDS]
    for start in starts:
        where = "end" if start else "start"
        stream = ffmpeg.input(str(path), ss=start, t=CHECK_SECONDS)
        try:
            out, err = (stream.output("-", f="framecrc").global_args("-nostdin", "-v", "error")
                        .run(capture_stdout=True, capture_stderr=True))
        except ffmpeg.Error as exc:
            raise InvalidMedia(f"ffmpeg cannot decode it ({_first_error(exc)}).") from None
        errors = [l for l in err.decode("utf-8", "replace").splitlines() if l.strip()]
        frames = [l for l in out.splitlines() if l and not l.startswith(b"#")]
        if errors or not frames:
            reason = errors[0].split("] ")[-1].strip() if errors else "no frame decodes"
            raise InvalidMedia(f"It is damaged or cut short: decoding its {where} fails ({reason}).")


@dataclass(frozen=True)
class AccessPlan:
    remux: bool
    suffix: str
    mime: str


def plan_access_copy(info: MediaInfo) -> AccessPlan:
    """Remux when the streams are already H.264/AAC; otherwise transcode. Audio-only is M4A."""
    audio_ok = all(c == "aac" for c in info.audio_codecs)
    if info.has_video:
        return AccessPlan(info.video_codec == "h264" and audio_ok, ".mp4", "video/mp4")
    return AccessPlan(audio_ok, ".m4a", "audio/mp4")


def make_access_copy(src: Path, dst: Path, info: MediaInfo,
                     progress: Callable[[float], None] | None = None) -> AccessPlan:
    """Write the access copy of `src` to `dst`: MP4 H.264/AAC with faststart, or M4A; every
    audio track kept."""
    plan = plan_access_copy(info)
    source = ffmpeg.input(str(Path(src).resolve()))
    streams = ([source["v:0"]] if info.has_video else []) + [source[f"a:{i}"] for i in range(len(info.audio_codecs))]
    options: dict = {"movflags": "+faststart", "f": "mp4", "map_metadata": 0}
    if plan.remux:
        options.update(c="copy")
    else:
        if info.has_video:
            options.update(vcodec="libx264", preset="veryfast", crf=23, pix_fmt="yuv420p",
                           vf="scale=trunc(iw/2)*2:trunc(ih/2)*2")
        if info.has_audio:
            options.update(acodec="aac", audio_bitrate="160k")
    _run_with_progress(ffmpeg.output(*streams, str(dst), **options), info.duration, progress)
    return plan


def extract_asr_audio(src: Path, dst: Path, duration: float = 0,
                      progress: Callable[[float], None] | None = None) -> None:
    """The first audio track as 16 kHz mono 16-bit WAV, what Vosk decodes."""
    out = ffmpeg.input(str(Path(src).resolve()))["a:0"].output(
        str(dst), ac=1, ar=ASR_RATE, acodec="pcm_s16le", f="wav")
    _run_with_progress(out, duration, progress)


def _run_with_progress(output, duration: float, progress: Callable[[float], None] | None) -> None:
    """Run ffmpeg, reading its -progress output; stderr goes to a file so it can never block."""
    cmd = output.overwrite_output().global_args("-nostdin", "-v", "error", "-progress", "pipe:1",
                                                "-nostats").compile()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            for line in proc.stdout:
                key, _, value = line.decode("ascii", "replace").strip().partition("=")
                if key == "out_time_us" and progress and duration > 0 and value.isdigit():
                    progress(min(1.0, int(value) / 1e6 / duration))
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            err.seek(0)
            lines = [l for l in err.read().decode("utf-8", "replace").splitlines() if l.strip()]
            reason = lines[-1] if lines else f"exit status {code}"
            if "No space left" in reason:
                raise OSError(28, "No space left on device")
            raise ArchiveError(f"ffmpeg failed to convert the recording ({reason}).")
    if progress:
        progress(1.0)
